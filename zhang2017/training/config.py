"""One run's configuration: a frozen dataclass; defaults are the paper's.

No absl below the binaries: `cli.define_config_flags` makes a flag of every
field and `cli.config_from_flags` turns them into a `Config`; `validate`
turns every bad combination into a one-line `UserError`. Importing this
module does not import Keras.
"""

import dataclasses
import hashlib
import math
import os
import re
from typing import Optional

from zhang2017.data import corruption
from zhang2017.data import datasets as data
from zhang2017.models import specs as model_specs
from zhang2017.errors import UserError

# The paper's architectures (`paper_models.build`); `model_specs` names the
# others --model takes (reading a configuration needs no Keras).
MODELS = model_specs.PAPER
# numpy's legacy seeding (keras.utils.set_random_seed) takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
# Appendix A: 0.1 for Inception, 0.01 for AlexNet and the MLPs.
PAPER_LEARNING_RATE = {
    'inception_small': 0.1,
    'inception_small_nobn': 0.1,
    'alexnet_small': 0.01,
    'mlp_1x512': 0.01,
    'mlp_3x512': 0.01,
    'inception_v3': 0.1,
}
# Every other model (resnet18, vgg11_bn, plug-ins): 0.1 threw VGG-11-BN to
# chance where 0.01 learns (README "Your model, your data").
PLUGIN_LEARNING_RATE = 0.01
_SAFE = re.compile(r'^[\w.=+-]+$', re.ASCII)


# Config fields that checkpoints written before them lack, with defaults.
_ADDED_LATER = {'model_kwargs': None}


def _field(default, help_text, choices=None):
  """A Config field with its flag's help text (and allowed values)."""
  return dataclasses.field(default=default,
                           metadata={'help': help_text, 'choices': choices})


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that determines a run's result (plus where it goes).

  Each field is a flag of `zhang2017.train` (cli.define_config_flags), with
  the help text given here: adding a field adds the flag.
  """
  dataset: str = _field(
      'cifar10', 'Dataset: cifar10, mnist, imagenet, tfds:NAME[/CONFIG] (a '
      'tfds dataset prepared under --data_dir), folder:PATH (images in '
      'PATH/{train,test}/<class>/*.png|jpg|jpeg) or package.module:function '
      '(returning x_train, y_train, x_test, y_test; README "Your model, your '
      'data").')
  data_dir: Optional[str] = _field(
      None, 'Folder with the dataset files (default: $ZHANG2017_DATA_DIR, '
      'then the tfds default).')
  model: str = _field(
      'inception_small', 'Architecture: the paper\'s (its Section 3) '
      f'{", ".join(MODELS)}; the CIFAR {", ".join(model_specs.MORE)}; or a '
      'plug-in package.module:function, build(input_shape, num_classes, '
      '**kwargs) -> keras.Model of raw 0..255 images to logits, imported '
      'from PYTHONPATH (README "Your model, your data").')
  model_kwargs: Optional[str] = _field(
      None, 'JSON object of keyword arguments for a plug-in --model\'s '
      'function, e.g. \'{"width": 64}\'.')
  labels: str = _field('true', 'true, partial (with --corrupt_prob) or '
                       'random.', corruption.LABEL_KINDS)
  corrupt_prob: float = _field(
      0.0, 'Probability that a training label is redrawn uniformly (only '
      'with --labels=partial).')
  pixels: str = _field('none', 'Image randomization.', corruption.PIXEL_KINDS)
  random_crop: bool = _field(False, 'Random 28x28 training crops (test: '
                             'centre crop); resnet18, vgg11_bn: crops of the '
                             'image padded by 4 (test: the image).')
  augment: bool = _field(
      False, 'Random crops, horizontal flips and rotations up to 25 degrees '
      '(the appendix\'s "augmentation"; ImageNet: flips; resnet18, '
      'vgg11_bn: padded crops and flips).')
  weight_decay: float = _field(0.0, 'wd of a wd * sum(w^2) / 2 penalty on '
                               'kernels (plug-ins: on every kernel).')
  dropout: float = _field(0.0, 'Dropout rate before the classifier (not '
                          'for plug-ins).')
  batch_size: int = _field(128, 'Mini-batch size; every step is a full '
                           'batch (the epoch\'s remainder sits it out).')
  learning_rate: Optional[float] = _field(
      None, 'Initial learning rate (default: 0.1 for Inception, 0.01 for '
      'AlexNet, the MLPs, resnet18, vgg11_bn and plug-ins).')
  lr_decay: float = _field(0.95, 'Learning rate factor per epoch.')
  momentum: float = _field(0.9, 'SGD momentum.')
  epochs: int = _field(100, 'Epoch limit; the run stops earlier once it fits '
                       'the training set (100% training accuracy).')
  seed: int = _field(0, 'Seed for the corruption, subset, initialization and '
                     'order.')
  train_size: Optional[int] = _field(
      None, 'Use a fixed, seeded subset of this many training examples '
      '(default: all).')
  test_size: Optional[int] = _field(
      None, 'Evaluate on a fixed, seeded subset of this many test examples '
      '(smoke runs and rehearsals; default: all).')
  eval_batch_size: int = _field(1000, 'Batch size for evaluation (one shape '
                                'for train and test).')
  steps_per_call: Optional[int] = _field(
      None, 'Training steps per compiled call; 0: a whole epoch. '
      'TensorFlow: steps per `fit` execution, default 32. JAX: '
      'rounded down to a divisor of the steps per epoch; default 1 on a '
      'CPU, a whole epoch on a GPU. The numbers do not depend on it.')
  mixed_precision: bool = _field(False, 'bfloat16 compute (float32 weights).')
  output_dir: Optional[str] = _field(
      None, 'Run folder: result.json, history.csv, tb/ (default: '
      'runs/<dataset>-<model>-<labels>...-seed<k>).')

  @property
  def lr(self):
    if self.learning_rate is not None:
      return self.learning_rate
    return PAPER_LEARNING_RATE.get(self.model, PLUGIN_LEARNING_RATE)

  @property
  def kwargs(self):
    """--model_kwargs as a dict ({} when unset); `validate` checked it."""
    return model_specs.kwargs(self.model_kwargs)

  def to_dict(self):
    return dataclasses.asdict(self)

  def run_key(self):
    """The fields a resumed run must share with its checkpoint."""
    d = self.to_dict()
    for k in ('data_dir', 'output_dir', 'eval_batch_size', 'steps_per_call'):
      d.pop(k)
    d['learning_rate'] = self.lr
    # Fields added later, at their defaults, leave the key as it was, so a
    # checkpoint written before them still resumes.
    for k, default in _ADDED_LATER.items():
      if d[k] == default:
        d.pop(k)
    return d


def _slug(text):
  """`text` as one part of a folder name: as it is where it holds only
  letters, digits and ._=+- (not leading '.'); else those kept, the rest
  '_', and a hash of `text` so that two specs never share a folder."""
  if _SAFE.match(text) and not text.startswith('.'):
    return text
  # A '.' stays only between letters or digits (no '..' in a name).
  readable = re.sub(r'(?:[^\w.=+-]|\.(?!\w)|(?<!\w)\.)+', '_', text,
                    flags=re.ASCII).strip('_')
  return f'{readable[:48]}~{hashlib.sha256(text.encode()).hexdigest()[:8]}'


def default_run_dir(cfg):
  """runs/<dataset>-<model>-<labels>[-...]-seed<k>: the flags that differ
  from the defaults, readable, so two different runs get two folders (a
  part with characters unsafe in a folder name, such as a plug-in's ':' or
  a path's '/', is rewritten by `_slug`)."""
  parts = [cfg.dataset, cfg.model, cfg.labels]
  if cfg.labels == 'partial':
    parts[-1] += f'{cfg.corrupt_prob:g}'
  defaults = Config(model=cfg.model)
  skip = ('dataset', 'model', 'labels', 'corrupt_prob', 'seed', 'data_dir',
          'output_dir', 'eval_batch_size', 'steps_per_call')
  for f in dataclasses.fields(Config):
    value = getattr(cfg, f.name)
    if f.name in skip or value == getattr(defaults, f.name):
      continue
    if value is True:
      parts.append(f.name)
    elif f.name == 'pixels':
      parts.append(f'{value}_pixels')
    else:
      parts.append(f'{f.name}{value:g}' if isinstance(value, float)
                   else f'{f.name}{value}')
  return os.path.join(
      'runs', '-'.join([_slug(p) for p in parts] + [f'seed{cfg.seed}']))


def _finite(name, value, lo=None, hi=None, lo_open=False):
  if value is None or not math.isfinite(value):
    raise UserError(f'--{name}={value} is not a finite number')
  if lo is not None and (value < lo or (lo_open and value == lo)):
    op = '>' if lo_open else '>='
    raise UserError(f'--{name}={value} is out of range; use a value {op} {lo}'
                    + (f' and <= {hi}' if hi is not None else ''))
  if hi is not None and value > hi:
    raise UserError(f'--{name}={value} is out of range; use a value <= {hi}')


def validate(cfg):
  """Raises UserError naming the flag and the fix for any bad value.

  Returns:
    cfg, unchanged, for chaining.
  """
  def choice(name, value, allowed):
    if value not in allowed:
      raise UserError(f'--{name}={value} is not known; use one of '
                      f'{", ".join(allowed)}')
  data.check_spec(cfg.dataset)
  model_specs.check(cfg.model, cfg.model_kwargs, cfg.random_crop,
                    cfg.augment, cfg.dropout)
  choice('labels', cfg.labels, corruption.LABEL_KINDS)
  choice('pixels', cfg.pixels, corruption.PIXEL_KINDS)
  _finite('corrupt_prob', cfg.corrupt_prob, 0.0, 1.0)
  if cfg.labels == 'true' and cfg.corrupt_prob > 0:
    raise UserError(f'--corrupt_prob={cfg.corrupt_prob} has no effect with '
                    '--labels=true; use --labels=partial')
  if cfg.labels == 'random' and cfg.corrupt_prob not in (0.0, 1.0):
    raise UserError(f'--labels=random means --corrupt_prob=1; for '
                    f'p={cfg.corrupt_prob} use --labels=partial')
  _finite('weight_decay', cfg.weight_decay, 0.0)
  _finite('dropout', cfg.dropout, 0.0, 0.99)
  _finite('lr_decay', cfg.lr_decay, 0.0, 1.0, lo_open=True)
  _finite('momentum', cfg.momentum, 0.0, 0.999)
  if cfg.learning_rate is not None:
    _finite('learning_rate', cfg.learning_rate, 0.0, lo_open=True)
  for name in ('batch_size', 'epochs', 'eval_batch_size'):
    if getattr(cfg, name) < 1:
      raise UserError(f'--{name}={getattr(cfg, name)} must be at least 1')
  if not 0 <= cfg.seed <= MAX_SEED:
    raise UserError(f'--seed={cfg.seed} is out of range; use a value >= 0 '
                    f'and <= {MAX_SEED}')
  if cfg.steps_per_call is not None and cfg.steps_per_call < 0:
    raise UserError(f'--steps_per_call={cfg.steps_per_call} must be 0 (a '
                    'whole epoch per call) or more')
  for name in ('train_size', 'test_size'):
    size = getattr(cfg, name)
    if size is not None and size < 1:
      raise UserError(f'--{name}={size} must be at least 1 (or unset for '
                      'the whole split)')
  if cfg.train_size is not None and cfg.train_size < cfg.batch_size:
    raise UserError(f'--train_size={cfg.train_size} is smaller than '
                    f'--batch_size={cfg.batch_size}: every step is a full '
                    'batch; raise --train_size or lower --batch_size')
  if cfg.dataset == 'imagenet' and cfg.model != 'inception_v3':
    raise UserError(f'--dataset=imagenet needs --model=inception_v3, not '
                    f'{cfg.model}')
  if cfg.model == 'inception_v3' and cfg.dataset != 'imagenet':
    raise UserError('--model=inception_v3 is the ImageNet model; use '
                    '--dataset=imagenet or a small CIFAR model')
  if cfg.pixels != 'none' and cfg.dataset == 'imagenet':
    raise UserError('pixel randomizations are not implemented for streamed '
                    'ImageNet; use --pixels=none')
  if cfg.random_crop and cfg.dataset == 'imagenet':
    raise UserError('--random_crop is not implemented for ImageNet (Table 2 '
                    'uses --augment); drop it')
  if (cfg.random_crop or cfg.augment) and cfg.dataset == 'mnist':
    raise UserError('--random_crop and --augment need images larger than the '
                    '28x28 crop; MNIST images are 28x28, drop them')
  return cfg


def check_sizes(cfg, n_train, n_test):
  """Raises UserError where the batch sizes do not fit the loaded data.

  Args:
    cfg: a validated `Config`.
    n_train, n_test: the sizes of the training and test sets after
      --train_size and --test_size.
  """
  if cfg.batch_size > n_train:
    raise UserError(f'--batch_size={cfg.batch_size} is larger than the '
                    f'{n_train:,} training images: an epoch would have no '
                    f'full batch; use --batch_size of at most {n_train}')
  # Batches beyond the larger split are all padding (the default is
  # always allowed, so small runs need not set it).
  most = max(n_train, n_test, Config.eval_batch_size)
  if cfg.eval_batch_size > most:
    raise UserError(f'--eval_batch_size={cfg.eval_batch_size} is larger than '
                    f'both splits ({n_train:,} and {n_test:,} images); its '
                    f'batches would be padding; use at most {most}')
