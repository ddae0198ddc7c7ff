r"""Tiled Cholesky of a Gaussian kernel matrix: variants side by side.

  python benchmarks/cholesky.py --n=16384 [--old=/path/to/older/kernel_lib.py]

Prints seconds and GFLOP/s (n^3 / 3 flops) of each variant on the same MNIST
kernel matrix, and the largest difference between their solutions; beside
them, the rate of one float32 matrix product of two tiles (the Cholesky's
building block: its ceiling here) and what that ceiling means for all
60,000 MNIST images.
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
from scipy.linalg import blas

from zhang2017.data import datasets as data
from zhang2017.theory import kernel_lib

_N = flags.DEFINE_integer('n', 16384, 'Training points.')
_TILE = flags.DEFINE_integer('tile', kernel_lib.TILE, 'Tile size.')
_OLD = flags.DEFINE_string('old', None, 'Another kernel_lib.py to compare.')


def _time(module, x, y):
  m = module.TiledSPD.kernel(x, 'gaussian', 10.0, tile=_TILE.value)
  t0 = time.time()
  m.cholesky()
  secs = time.time() - t0
  return secs, m.solve(y)


def _sgemm_gflops(tile, repeats=5):
  rng = np.random.default_rng(0)
  a, b, c = (np.asfortranarray(rng.random((tile, tile), np.float32))
             for _ in range(3))
  blas.sgemm(-1.0, a, b, beta=1.0, c=c, trans_b=1, overwrite_c=1)  # Warm.
  t0 = time.time()
  for _ in range(repeats):
    blas.sgemm(-1.0, a, b, beta=1.0, c=c, trans_b=1, overwrite_c=1)
  return repeats * 2 * tile ** 3 / (time.time() - t0) / 1e9


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
  peak = _sgemm_gflops(_TILE.value)
  print(f'{"sgemm of two tiles (ceiling)":<40} {"":>10} {peak:8.1f} GFLOP/s')
  print(f'at that rate the 60,000 x 60,000 factorization takes at least '
        f'{60_000 ** 3 / 3 / peak / 1e9:.0f} s')
  if len(alphas) > 1:
    print(f'max |alpha difference| {np.abs(alphas[0] - alphas[1]).max():.3g}'
          f' (max |alpha| {np.abs(alphas[0]).max():.3g})')


if __name__ == '__main__':
  app.run(main)
