"""Kernel matrices from features that arrive in chunks (random filters).

`kernel_lib.interpolate` computes kernel tiles straight from the inputs.
With 32,000 random filters a feature matrix would not fit in memory (CIFAR-10:
60,000 x 256,000 floats, 61 GB), but dot products and squared norms add up
over chunks of features; a Gaussian kernel needs only those.
"""

import numpy as np

from zhang2017 import kernel_lib


class Gram:
  """Dot products of features that arrive in column chunks (random filters),
  so no full feature matrix is held: train x train lower tiles, eval x train
  rows (eval = the residual sample of training rows, then the test rows),
  and squared norms; `kernel` and `cross_kernel` then apply the kernel.
  Memory: about 0.6 n^2 + 4 n (n_eval) bytes, whatever the feature count.
  """

  def __init__(self, n_train, n_test, tile=kernel_lib.TILE):
    self.dots = kernel_lib.TiledSPD(n_train, tile)
    self.sample = kernel_lib.residual_sample(n_train)
    self.cross = np.zeros((len(self.sample) + n_test, n_train), np.float32)
    self.sq = np.zeros(n_train, np.float32)
    self.sq_eval = np.zeros(len(self.cross), np.float32)
    self.dim = 0

  def add(self, f_train, f_test):
    """Adds one chunk: f_train (n_train, k), f_test (n_test, k) float32."""
    d = self.dots
    for i in range(d.t):
      for j in range(i + 1):
        g = f_train[d.rows(i)] @ f_train[d.rows(j)].T
        if (i, j) in d.tiles:
          d.tiles[i, j] += g
        else:
          d.tiles[i, j] = g
    f_eval = np.concatenate([f_train[self.sample], f_test])
    for j in range(d.t):
      self.cross[:, d.rows(j)] += f_eval @ f_train[d.rows(j)].T
    self.sq += np.einsum('ij,ij->i', f_train, f_train)
    self.sq_eval += np.einsum('ij,ij->i', f_eval, f_eval)
    self.dim += f_train.shape[1]

  def distances(self, i, j):
    """|f_i - f_j|^2 for index arrays i, j (read from the lower tiles)."""
    i, j = np.maximum(i, j), np.minimum(i, j)
    t = self.dots.tile
    dot = np.array([self.dots.tiles[a // t, b // t][a % t, b % t]
                    for a, b in zip(i, j)])
    return self.sq[i].astype(np.float64) + self.sq[j] - 2 * dot

  def median_gamma(self, seed=0, num_pairs=20_000):
    """`kernel_lib.median_gamma` from the accumulated dot products."""
    i, j = kernel_lib.pairs(self.dots.n, seed, num_pairs)
    return float(self.dim / np.median(self.distances(i, j)))

  def _apply(self, dots, sqa, sqb, kernel, gamma):
    if kernel == 'linear':
      return dots.copy()  # The factorization overwrites its tiles.
    return kernel_lib.gaussian_from_dots(dots, sqa, sqb, gamma, self.dim)

  def kernel(self, kernel='gaussian', gamma=10.0, l2=0.0):
    """A new TiledSPD: the kernel matrix (+ l2 I); the dot products stay."""
    d = self.dots
    m = kernel_lib.TiledSPD(d.n, d.tile)
    for (i, j), dots in d.tiles.items():
      m.tiles[i, j] = self._apply(dots, self.sq[d.rows(i)], self.sq[d.rows(j)],
                                  kernel, gamma)
    m.add_to_diagonal(l2)
    return m

  def cross_kernel(self, kernel='gaussian', gamma=10.0):
    """(n_eval, n_train) kernel values of the eval rows."""
    return self._apply(self.cross, self.sq_eval, self.sq, kernel, gamma)
