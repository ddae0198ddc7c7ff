"""One run's configuration: a frozen dataclass; defaults are the paper's.

No absl below the binaries: `train.py` turns flags into a `Config`, and
`validate` turns every bad combination into a one-line `UserError`.
"""

import dataclasses
import math
from typing import Optional

from zhang2017 import corruption
from zhang2017 import data
from zhang2017 import models
from zhang2017.errors import UserError

# Appendix A: 0.1 for Inception, 0.01 for AlexNet and the MLPs.
PAPER_LEARNING_RATE = {
    'inception_small': 0.1,
    'inception_small_nobn': 0.1,
    'alexnet_small': 0.01,
    'mlp_1x512': 0.01,
    'mlp_3x512': 0.01,
    'inception_v3': 0.1,
}


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that determines a run's result (plus where it goes)."""
  dataset: str = 'cifar10'
  data_dir: Optional[str] = None
  model: str = 'inception_small'
  labels: str = 'true'
  corrupt_prob: float = 0.0
  pixels: str = 'none'
  random_crop: bool = False
  augment: bool = False
  weight_decay: float = 0.0
  dropout: float = 0.0
  batch_size: int = 128
  learning_rate: Optional[float] = None  # None: the paper's per-model value.
  lr_decay: float = 0.95
  momentum: float = 0.9
  epochs: int = 100
  seed: int = 0
  train_size: Optional[int] = None
  eval_batch_size: int = 1000
  mixed_precision: bool = False
  output_dir: Optional[str] = None

  @property
  def lr(self):
    if self.learning_rate is not None:
      return self.learning_rate
    return PAPER_LEARNING_RATE[self.model]

  def to_dict(self):
    return dataclasses.asdict(self)

  def run_key(self):
    """The fields a resumed run must share with its checkpoint."""
    d = self.to_dict()
    for k in ('data_dir', 'output_dir', 'eval_batch_size'):
      d.pop(k)
    d['learning_rate'] = self.lr
    return d


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
  choice('dataset', cfg.dataset, data.DATASETS)
  choice('model', cfg.model, models.MODELS)
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
  if cfg.train_size is not None and cfg.train_size < 1:
    raise UserError(f'--train_size={cfg.train_size} must be at least 1 '
                    '(or unset for the whole training set)')
  if cfg.dataset == 'imagenet' and cfg.model != 'inception_v3':
    raise UserError(f'--dataset=imagenet needs --model=inception_v3, not '
                    f'{cfg.model}')
  if cfg.model == 'inception_v3' and cfg.dataset != 'imagenet':
    raise UserError('--model=inception_v3 is the ImageNet model; use '
                    '--dataset=imagenet or a small CIFAR model')
  if (cfg.random_crop or cfg.augment) and cfg.dataset == 'mnist':
    raise UserError('--random_crop and --augment need images larger than the '
                    '28x28 crop; MNIST images are 28x28, drop them')
  return cfg
