"""What --model may name, checked without Keras (the configuration's
validation imports this; `registry` builds the model).

A registered name: the paper's architectures (`paper_models.build`) or the
CIFAR ones of follow-up work (`resnet.py`, `vgg.py`). Anything else is a
plug-in, `package.module:function`, imported from the Python path when the
model is built; --model_kwargs (a JSON object) goes to its function.
"""

import json
import re

from zhang2017.errors import UserError

PAPER = ('inception_small', 'inception_small_nobn', 'alexnet_small',
         'mlp_1x512', 'mlp_3x512', 'inception_v3')
MORE = ('resnet18', 'vgg11_bn')
REGISTERED = PAPER + MORE
# A dotted module path, ':' and a function (or Class.method, or a callable's
# qualified name such as make.<locals>.build) in it.
PLUGIN = re.compile(r'^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_<][\w<>]*'
                    r'(\.[A-Za-z_<][\w<>]*)*$')


def is_plugin(spec):
  """True for a spec that is not a registered name."""
  return spec not in REGISTERED


def kwargs(text):
  """--model_kwargs as a dict ({} for None); `check` has checked it."""
  return json.loads(text) if text else {}


def check(spec, kwargs_text, random_crop, augment, dropout):
  """Raises UserError for a bad --model or --model_kwargs, or a flag that
  needs a built-in model's preprocessing or classifier with a plug-in."""
  plugin = is_plugin(spec)
  if plugin and not PLUGIN.match(spec):
    raise UserError(f'--model={spec} is not known; it should be one of '
                    f'{", ".join(REGISTERED)} or a plug-in '
                    'package.module:function')
  if kwargs_text is not None:
    if not plugin:
      raise UserError(f'--model_kwargs is for plug-in models '
                      f'(package.module:function); {spec} takes none: drop '
                      'it')
    try:
      value = json.loads(kwargs_text)
    except ValueError as e:
      raise UserError(f'--model_kwargs={kwargs_text} is not valid JSON ({e}); '
                      'pass an object such as \'{"width": 64}\'') from e
    if not isinstance(value, dict):
      raise UserError(f'--model_kwargs={kwargs_text} is a JSON '
                      f'{type(value).__name__}, not an object; pass keyword '
                      'arguments such as \'{"width": 64}\'')
  if not plugin:
    return
  for name, value in (('random_crop', random_crop), ('augment', augment)):
    if value:
      raise UserError(f'--{name} is preprocessing of the built-in models; a '
                      'plug-in does its own (options through --model_kwargs): '
                      f'drop --{name}')
  if dropout:
    raise UserError(f'--dropout is placed by the built-in models; put dropout '
                    f'in {spec} (its rate through --model_kwargs) and drop '
                    '--dropout')
