r"""Tiled Cholesky of a Gaussian kernel matrix: variants side by side.

  python benchmarks/cholesky.py --n=16384 [--old=/path/to/older/kernel_lib.py]

Prints seconds and GFLOP/s (n^3 / 3 flops) of each variant on the same MNIST
kernel matrix, and the largest difference between their solutions.
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

from zhang2017 import data
from zhang2017 import kernel_lib

_N = flags.DEFINE_integer('n', 16384, 'Training points.')
_TILE = flags.DEFINE_integer('tile', kernel_lib.TILE, 'Tile size.')
_OLD = flags.DEFINE_string('old', None, 'Another kernel_lib.py to compare.')


def _time(module, x, y):
  m = module.TiledSPD.kernel(x, 'gaussian', 10.0, tile=_TILE.value)
  t0 = time.time()
  m.cholesky()
  secs = time.time() - t0
  return secs, m.solve(y)


def main(argv):
  del argv
  ds = data.load('mnist')
  x = ds.x_train[:_N.value].reshape(_N.value, -1).astype(np.float32) / 255
  y = np.eye(10)[ds.y_train[:_N.value]]
  variants = [('this checkout', kernel_lib)]
  if _OLD.value:
    spec = importlib.util.spec_from_file_location('old', _OLD.value)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    variants.append((_OLD.value, old))
  flops = _N.value ** 3 / 3
  alphas = []
  for name, module in variants:
    secs, alpha = _time(module, x, y)
    alphas.append(alpha)
    print(f'{name:<40} {secs:8.1f} s {flops / secs / 1e9:8.1f} GFLOP/s')
  if len(alphas) > 1:
    print(f'max |alpha difference| {np.abs(alphas[0] - alphas[1]).max():.3g}'
          f' (max |alpha| {np.abs(alphas[0]).max():.3g})')


if __name__ == '__main__':
  app.run(main)
