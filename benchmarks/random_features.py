r"""Random-feature CIFAR-10 (Section 5): where a 1,024-filter chunk's time goes.

  python benchmarks/random_features.py --n=2000 \
      [--old=/path/to/older/random_features.py]

On n real CIFAR-10 training images: seconds of `random_features.transform`
for one chunk of 1,024 filters (this checkout, and --old beside it on the
same images, with the largest difference between their features), then of
`Gram.add` for that chunk on --gram_n rows. Each is scaled to the full run
(50,000 training and 10,000 test images): the transform linearly in images,
the dot products by their flop count at the measured rate; then the time
of 32,000 filters before the Cholesky.
"""

import importlib.util
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np

from zhang2017.data import datasets as data
from zhang2017.theory import gram as gram_lib
from zhang2017.theory import kernel_lib
from zhang2017.theory import random_features

_N = flags.DEFINE_integer('n', 2000, 'Training images to time on.')
_GRAM_N = flags.DEFINE_integer(
    'gram_n', 8192, 'Rows for timing Gram.add (the features repeated).')
_OLD = flags.DEFINE_string('old', None, 'Another random_features.py.')
_CHUNK = 1024
_TRAIN, _TEST, _SAMPLE, _FILTERS = 50_000, 10_000, 2_000, 32_000


def _load(path):
  spec = importlib.util.spec_from_file_location('old', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main(argv):
  del argv
  n = _N.value
  x = data.load('cifar10').x_train[:n] / np.float32(255)
  fm = random_features.fit(x, _CHUNK, seed=0)
  variants = [('this checkout', random_features)]
  if _OLD.value:
    variants.append((_OLD.value, _load(_OLD.value)))
  features = []
  per_image = None
  for name, module in variants:
    t0 = time.time()
    features.append(module.transform(x, fm))
    secs = time.time() - t0
    per_image = per_image or secs / n
    print(f'transform, {name:<34} {secs:7.1f} s for {n} images: '
          f'{secs / n * (_TRAIN + _TEST):6.0f} s per chunk of the full run')
  if len(features) > 1:
    d = np.abs(features[0] - features[1])
    print(f'max |feature difference| {d.max():.3g} (largest feature '
          f'{np.abs(features[1]).max():.3g})')
  n = _GRAM_N.value
  f = np.resize(features[0], (n, features[0].shape[1]))
  n_test = n // 5
  gram = gram_lib.Gram(n, n_test, kernel_lib.TILE)
  t0 = time.time()
  gram.add(f, f[:n_test])
  secs = time.time() - t0
  d = gram.dots
  flops = 2 * f.shape[1] * (sum(
      (d.edges[i + 1] - d.edges[i]) * (d.edges[j + 1] - d.edges[j])
      for i in range(d.t) for j in range(i + 1)) + len(gram.cross) * n)
  rate = flops / secs / 1e9
  t = -(-_TRAIN // kernel_lib.TILE)
  full = 2 * f.shape[1] * (kernel_lib.TILE ** 2 * t * (t + 1) / 2 +
                           (_SAMPLE + _TEST) * _TRAIN)
  print(f'Gram.add of {n} x {f.shape[1]} features: {secs:.1f} s, '
        f'{rate:.0f} GFLOP/s: {full / rate / 1e9:6.0f} s per chunk of the '
        f'full run')
  chunk = per_image * (_TRAIN + _TEST) + full / rate / 1e9
  chunks = -(-_FILTERS // _CHUNK)
  print(f'per chunk {chunk:.0f} s; {_FILTERS:,} filters ({chunks} chunks): '
        f'{chunk * chunks / 3600:.2f} h before the Cholesky')


if __name__ == '__main__':
  app.run(main)
