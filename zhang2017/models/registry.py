"""`build(spec, ...)`: the model --model names, checked before it trains.

A spec is a registered name (`specs.REGISTERED`: the paper's models, built
with their 28x28 crop, and `resnet18` / `vgg11_bn`, whole images) or a
plug-in `package.module:function`, imported with importlib and called as
`function(input_shape, num_classes, **model_kwargs)`. A plug-in gets the raw
images (uint8 0..255; float after --pixels=gaussian) of the data's shape and
must return a `keras.Model` of (batch, num_classes) logits; --weight_decay
puts the penalty of the built-in models on each of its kernels. Every
mistake in a plug-in that this module can see is one `UserError` line.
"""

import importlib
import inspect

import keras
import numpy as np

from zhang2017.errors import UserError
from zhang2017.models import paper_models
from zhang2017.models import parts
from zhang2017.models import resnet
from zhang2017.models import specs
from zhang2017.models import vgg

count_params = paper_models.count_params
# The paper's models crop to this (their parameter counts force it).
PAPER_CROP = 28
_MORE = {'resnet18': resnet.build, 'vgg11_bn': vgg.build}


def qualified_name(fn):
  """'module:qualname' of a callable, as a run records a `model_fn`."""
  module = getattr(fn, '__module__', None) or '__main__'
  name = getattr(fn, '__qualname__', None) or type(fn).__qualname__
  return f'{module}:{name}'


def resolve(spec):
  """The plug-in function a `package.module:function` spec names.

  Raises:
    UserError: the module cannot be imported, or has no such callable.
  """
  module_name, _, attr = spec.partition(':')
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name and (module_name + '.').startswith(e.name + '.'):
      raise UserError(f'--model={spec}: no module {e.name} on the Python '
                      f'path; add the folder holding {e.name} to PYTHONPATH '
                      '(or run from it)') from e
    raise UserError(f'--model={spec}: importing {module_name} failed ({e}); '
                    f'install {e.name} or fix the import') from e
  except (ImportError, SyntaxError) as e:
    raise UserError(f'--model={spec}: importing {module_name} failed '
                    f'({type(e).__name__}: {e}); fix the module') from e
  fn = module
  for part in attr.split('.'):
    if not hasattr(fn, part):
      found = sorted(n for n, v in vars(module).items()
                     if inspect.isfunction(v) and not n.startswith('_')
                     and v.__module__ == module.__name__)
      where = getattr(module, '__file__', None) or module_name
      raise UserError(f'--model={spec}: {where} has no function {attr}; '
                      f'use one of its functions ({", ".join(found) or "none"})'
                      ' after the colon')
    fn = getattr(fn, part)
  if not callable(fn):
    raise UserError(f'--model={spec}: {module_name}.{attr} is not a '
                    f'function (type {type(fn).__name__}); name the function '
                    'that builds the model')
  return fn


def build(spec, input_shape, num_classes, kwargs=None, random_crop=False,
          augment=False, weight_decay=0.0, dropout=0.0, seed=0,
          synchronized_bn=False, model_fn=None):
  """Builds the model `spec` names, from raw images to logits.

  Args:
    spec: a registered name or `package.module:function`.
    input_shape: the data's image shape (H, W, C).
    num_classes: the data's number of classes.
    kwargs: keyword arguments for a plug-in's function (--model_kwargs).
    random_crop, augment, weight_decay, dropout, seed, synchronized_bn: the
      flags of the built-in models (see `paper_models.build`); a plug-in
      takes only `weight_decay` (`specs.check` refuses the others) and
      `synchronized_bn` (its BatchNormalization layers are synchronized).
    model_fn: a callable used instead of importing `spec` (a notebook's).

  Returns:
    An uncompiled `keras.Model` with (None, num_classes) outputs.

  Raises:
    UserError: see `resolve` and `check_model`.
  """
  input_shape = tuple(int(d) for d in input_shape)
  if model_fn is None and spec in specs.PAPER:
    if spec != 'inception_v3' and min(input_shape[:2]) < PAPER_CROP:
      raise UserError(f'--model={spec} crops images to {PAPER_CROP}x'
                      f'{PAPER_CROP}; these are {input_shape[0]}x'
                      f'{input_shape[1]}: use larger images, or resnet18, '
                      'vgg11_bn or a plug-in model')
    if (random_crop or augment) and spec != 'inception_v3' and min(
        input_shape[:2]) <= PAPER_CROP:
      raise UserError(f'--random_crop and --augment need images larger than '
                      f'the {PAPER_CROP}x{PAPER_CROP} crop; these are '
                      f'{input_shape[0]}x{input_shape[1]}: drop them')
    return paper_models.build(
        spec, num_classes, input_shape, crop=PAPER_CROP,
        random_crop=random_crop, augment=augment, weight_decay=weight_decay,
        dropout=dropout, seed=seed, synchronized_bn=synchronized_bn)
  if model_fn is None and spec in _MORE:
    return _MORE[spec](input_shape, num_classes, random_crop=random_crop,
                       augment=augment, weight_decay=weight_decay,
                       dropout=dropout, seed=seed,
                       synchronized_bn=synchronized_bn)
  fn = model_fn or resolve(spec)
  kwargs = dict(kwargs or {})
  try:
    inspect.signature(fn).bind(input_shape, num_classes, **kwargs)
  except TypeError as e:
    raise UserError(f'--model={spec} cannot be called as function('
                    f'input_shape, num_classes, **{kwargs}) ({e}); fix '
                    '--model_kwargs or the function\'s arguments') from e
  except ValueError:
    pass  # No signature to read (a builtin): the call itself will tell.
  model = fn(input_shape, num_classes, **kwargs)
  check_model(spec, model, input_shape, num_classes)
  if weight_decay:
    _decay_kernels(spec, model, weight_decay)
  if synchronized_bn:
    _synchronize_batchnorm(model)
  return model


def _synchronize_batchnorm(model):
  """A plug-in's BatchNormalization layers, nested ones too (in a Sequential,
  a submodel or a user's own Layer), normalize over the global batch, as the
  built-in models' do under several replicas (the layer reads `synchronized`
  when it is called)."""
  # Only models have `.layers`; Keras tracks every layer's sublayers.
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.synchronized = True


def _shape(model, attr, input_shape):
  """model.input_shape or .output_shape; an unbuilt Sequential (no Input) is
  built for batches of any size, a subclassed model is called once."""
  if not model.built and isinstance(model, keras.Sequential):
    model.build((None,) + input_shape)
  try:
    return getattr(model, attr)
  except (AttributeError, ValueError, RuntimeError):
    if attr == 'input_shape':
      return None
  out = model(np.zeros((1,) + input_shape, np.uint8), training=False)
  return [None, *out.shape[1:]] if hasattr(out, 'shape') else out


def check_model(spec, model, input_shape, num_classes):
  """Raises UserError unless `model` is a keras.Model from images of
  `input_shape` to (batch, num_classes) logits."""
  if not isinstance(model, keras.Model):
    raise UserError(f'--model={spec} returned {type(model).__name__}, not '
                    'a keras.Model; end the function with return '
                    'keras.Model(inputs, logits)')
  fix = (f'build it from the input_shape {input_shape} and end in '
         f'Dense(num_classes) (num_classes={num_classes})')
  given = _shape(model, 'input_shape', input_shape)
  if isinstance(given, tuple) and (len(given) != len(input_shape) + 1 or any(
      g not in (None, d) for g, d in zip(given[1:], input_shape))):
    raise UserError(f'--model={spec} takes inputs of shape {given}, not the '
                    f'data\'s (batch, {", ".join(map(str, input_shape))}); '
                    f'{fix}')
  shape = _shape(model, 'output_shape', input_shape)
  if not (isinstance(shape, (tuple, list)) and len(shape) == 2
          and shape[-1] == num_classes):
    raise UserError(f'--model={spec} outputs {shape}, not (batch, '
                    f'{num_classes}) logits for the {num_classes} classes; '
                    f'{fix}')
  last = model.layers[-1] if model.layers else None
  if isinstance(last, keras.layers.Softmax) or getattr(
      last, 'activation', None) in (keras.activations.softmax,
                                    keras.activations.sigmoid):
    raise UserError(f'--model={spec} ends in a softmax or sigmoid; return '
                    'the logits (the loss applies the softmax)')


def _decay_kernels(spec, model, weight_decay):
  """Puts wd * sum(w^2) / 2 on every kernel of a plug-in, as the built-in
  models have it (a variable's regularizer is read when the losses are)."""
  for v in model.trainable_variables:
    if not v.path.endswith('kernel'):
      continue
    if v.regularizer is not None:
      raise UserError(f'--model={spec} already regularizes {v.path}; drop '
                      '--weight_decay (or the regularizer)')
    v.regularizer = parts.regularizer(weight_decay)
