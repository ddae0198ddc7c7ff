"""Section 5: the minimum-norm interpolant K alpha = y, solved on a small machine.

SGD from zero on a linear model (or a kernel machine) stays in the span of
the data, so when it interpolates it finds alpha = K^-1 y: the minimum-norm
solution. On all 60,000 MNIST images K is 60,000^2: 14.4 GB in float32,
28.8 GB in float64, and the LAPACK wrappers here index with 32 bits (over
2^31 elements they crash). So the matrix is kept as its lower triangle in
square tiles (float32 by default, 7.4 GB for MNIST; float64 tiles, 14.9 GB,
fit in 24 GB too: `matrix_gb` of the committed runs) and factored by a tiled
right-looking Cholesky in place: every LAPACK/BLAS call sees one tile or one
column panel, far below 2^31 elements; the trailing update is one matrix
product per tile column. The kernel is built tile by tile too (lower tiles
only), and test predictions are computed in tiles without forming K_test.
"""

import math
import resource
import time

import numpy as np
from scipy.linalg import blas
from scipy.linalg import lapack

TILE = 2048
# Ridges (times a Gaussian kernel's unit diagonal) the median rule tries,
# smallest first, when the float32 kernel matrix is not positive definite.
JITTERS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def gaussian_from_dots(dots, sqa, sqb, gamma, dim):
  """exp(-gamma * |x - x'|^2 / dim) from x . x' and the squared norms (a new
  array; dots is left as it is)."""
  d2 = sqa[:, None] + sqb[None, :] - 2.0 * dots
  np.maximum(d2, 0.0, out=d2)
  d2 *= np.float32(-gamma / dim)
  return np.exp(d2, out=d2)


def gaussian_tile(xa, xb, sqa, sqb, gamma, dim):
  """exp(-gamma * |x - x'|^2 / dim) for two row blocks."""
  return gaussian_from_dots(xa @ xb.T, sqa, sqb, gamma, dim)


def linear_tile(xa, xb, sqa, sqb, gamma, dim):
  del sqa, sqb, gamma, dim
  return xa @ xb.T


KERNELS = {'gaussian': gaussian_tile, 'linear': linear_tile}


class TiledSPD:
  """A symmetric matrix as its lower-triangle tiles {(i, j): array}, i >= j."""

  def __init__(self, n, tile=TILE):
    self.n, self.tile = n, tile
    self.edges = list(range(0, n, tile)) + [n]
    self.t = len(self.edges) - 1
    self.tiles = {}

  def rows(self, i):
    return slice(self.edges[i], self.edges[i + 1])

  @classmethod
  def kernel(cls, x, kernel='gaussian', gamma=10.0, l2=0.0, tile=TILE,
             dtype=np.float32):
    """K(x, x) (+ l2 * I) for rows x (n, d), lower tiles only, in dtype."""
    x = np.ascontiguousarray(x, dtype)
    m = cls(len(x), tile)
    sq = np.einsum('ij,ij->i', x, x)
    fn = KERNELS[kernel]
    for i in range(m.t):
      ri = m.rows(i)
      for j in range(i + 1):
        rj = m.rows(j)
        m.tiles[i, j] = fn(x[ri], x[rj], sq[ri], sq[rj], gamma, x.shape[1])
    m.add_to_diagonal(l2)
    return m

  def add_to_diagonal(self, value):
    """Adds value * I (a ridge) in place."""
    if value:
      for k in range(self.t):
        t = self.tiles[k, k]
        t[np.diag_indices_from(t)] += value

  def cholesky(self, log=None):
    """Overwrites the tiles with L (K = L L^T), tiled right-looking.

    Tiles are Fortran-ordered, so every BLAS call (strsm, ssyrk, sgemm)
    updates its tile in place: no panel copies, no temporaries.
    """
    for key, t in self.tiles.items():
      self.tiles[key] = np.asfortranarray(t)
    dtype = self.tiles[0, 0].dtype
    p = {np.float32: 's', np.float64: 'd'}[dtype.type]  # LAPACK's prefix.
    potrf, trsm = getattr(lapack, p + 'potrf'), getattr(blas, p + 'trsm')
    syrk, gemm = getattr(blas, p + 'syrk'), getattr(blas, p + 'gemm')
    # First: a larger gamma (potrf's advice below) cannot lift a diagonal.
    low = min(float(self.tiles[k, k].diagonal().min()) for k in range(self.t))
    if low <= 0:
      raise np.linalg.LinAlgError(
          f'the matrix is not positive definite: its diagonal reaches {low:g} '
          '(k(x, x): 1 for a Gaussian kernel, |x|^2 for a linear one); add '
          '--l2, or for a Gaussian use a smaller --gamma (rounding of '
          '|x - x|^2 times a huge gamma underflows k(x, x))')
    for k in range(self.t):
      t0 = time.time()
      lkk, info = potrf(self.tiles[k, k], lower=1, clean=1, overwrite_a=1)
      if info:
        raise np.linalg.LinAlgError(
            f'tile {k}: the matrix is not positive definite in {dtype} '
            f'(LAPACK info {info}); add --l2 or use a larger --gamma (a '
            'narrower Gaussian)')
      self.tiles[k, k] = lkk
      for i in range(k + 1, self.t):  # A_ik <- A_ik L_kk^-T
        self.tiles[i, k] = trsm(1.0, lkk, self.tiles[i, k], side=1,
                                lower=1, trans_a=1, overwrite_b=1)
      for j in range(k + 1, self.t):  # A_ij -= A_ik A_jk^T, i >= j > k
        ajk = self.tiles[j, k]
        self.tiles[j, j] = syrk(-1.0, ajk, beta=1.0, c=self.tiles[j, j],
                                lower=1, overwrite_c=1)
        for i in range(j + 1, self.t):
          self.tiles[i, j] = gemm(-1.0, self.tiles[i, k], ajk, beta=1.0,
                                  c=self.tiles[i, j], trans_b=1, overwrite_c=1)
      if log:
        log(f'cholesky tile column {k + 1}/{self.t} ({time.time() - t0:.1f}s)')

  def solve(self, y):
    """alpha with L L^T alpha = y, from the factored tiles (float64 RHS)."""
    z = np.array(y, np.float64)
    f64 = lambda t: t.astype(np.float64, copy=False)
    for i in range(self.t):  # Forward: L z = y.
      ri = self.rows(i)
      for j in range(i):
        z[ri] -= f64(self.tiles[i, j]) @ z[self.rows(j)]
      z[ri] = _tri_solve(self.tiles[i, i], z[ri], trans=False)
    for i in reversed(range(self.t)):  # Backward: L^T alpha = z.
      ri = self.rows(i)
      for j in range(i + 1, self.t):
        z[ri] -= f64(self.tiles[j, i]).T @ z[self.rows(j)]
      z[ri] = _tri_solve(self.tiles[i, i], z[ri], trans=True)
    return z

  def nbytes(self):
    return sum(t.nbytes for t in self.tiles.values())


def _tri_solve(l, b, trans):
  from scipy.linalg import solve_triangular  # pylint: disable=g-import-not-at-top
  return solve_triangular(l.astype(np.float64, copy=False), b, lower=True,
                          trans='T' if trans else 'N')


def predict(x_train, alpha, x_test, kernel='gaussian', gamma=10.0,
            tile=TILE, dtype=np.float32):
  """K(x_test, x_train) @ alpha, tile by tile (dtype kernel, float64 sum)."""
  xtr = np.ascontiguousarray(x_train, dtype)
  xte = np.ascontiguousarray(x_test, dtype)
  sqtr = np.einsum('ij,ij->i', xtr, xtr)
  sqte = np.einsum('ij,ij->i', xte, xte)
  out = np.zeros((len(xte), alpha.shape[1]))
  fn = KERNELS[kernel]
  for s in range(0, len(xte), tile):
    for r in range(0, len(xtr), tile):
      k = fn(xte[s:s + tile], xtr[r:r + tile], sqte[s:s + tile],
             sqtr[r:r + tile], gamma, xtr.shape[1])
      out[s:s + tile] += k.astype(np.float64) @ alpha[r:r + tile]
  return out


def peak_memory_gb():
  """Peak resident memory of this process so far (GB, Linux ru_maxrss)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


# Largest |K alpha - y| on the residual sample that still counts as
# interpolation (float32 solves of well-conditioned matrices reach 1e-5).
INTERPOLATION_TOLERANCE = 1e-3


def status(r):
  """A kernel result's honest status, from its own numbers (also for result
  files written before this function existed).

  Returns:
    'interpolated': no ridge and max |K alpha - y| on the residual sample
    below INTERPOLATION_TOLERANCE; 'labels_fitted': no ridge and every
    sampled training label predicted, but the float32 solve leaves a larger
    residual; 'ridge': a ridge (--l2 or the median rule's jitter) was added,
    so the fit is approximate by design; 'not_fitted': no ridge, yet some
    sampled training label is predicted wrong.
  """
  if (r.get('flags', {}).get('l2') or 0) + (r.get('jitter') or 0) > 0:
    return 'ridge'
  resid = r.get('max_abs_interpolation_residual', r.get('max_abs_residual'))
  if r.get('train_error_sample'):
    return 'not_fitted'
  if resid is None:
    return 'unknown'
  return ('interpolated' if resid < INTERPOLATION_TOLERANCE
          else 'labels_fitted')


def pairs(n, seed, count):
  """count seeded pairs (i, j) of distinct indices below n."""
  rng = np.random.default_rng([seed, 0x6A77])
  i = rng.integers(0, n, count)
  return i, (i + rng.integers(1, n, count)) % n  # j != i.


def median_gamma(x, seed=0, num_pairs=20_000):
  """The median rule: gamma = d / median |x_i - x_j|^2 over seeded random
  pairs of distinct training points, so that k(x_i, x_j) = exp(-1) at the
  median distance. Uses no labels and no test data."""
  i, j = pairs(len(x), seed, num_pairs)
  d2 = np.sum((x[i].astype(np.float64) - x[j]) ** 2, axis=1)
  return float(x.shape[1] / np.median(d2))


def residual_sample(n):
  """The training rows whose residual every run reports (seeded, <= 2000)."""
  return np.random.default_rng(0).choice(n, min(2000, n), replace=False)


def interpolate(x_train, y_train, x_test, y_test, num_classes, kernel='gaussian',
                gamma=10.0, l2=0.0, tile=TILE, log=None, dtype=np.float32):
  """Solves K alpha = one-hot(y) and evaluates the interpolant.

  Returns:
    dict: test_error, train_error_sample, rkhs_norm (the fitted function's
    norm, sqrt(alpha^T K alpha)), max_abs_residual of the solved system
    (K + l2 I) alpha = y and max_abs_interpolation_residual |K alpha - y| on
    a sample of training rows, timings and peak memory.
  """
  t0 = time.time()
  m = TiledSPD.kernel(x_train, kernel, gamma, l2, tile, dtype)
  sample = residual_sample(len(x_train))
  return _solve_and_evaluate(
      m, y_train, y_test, num_classes, l2, sample, t0, log,
      lambda alpha, x: predict(x_train, alpha, x, kernel, gamma, tile, dtype),
      (x_train[sample], x_test))


def interpolate_gram(gram, y_train, y_test, num_classes, kernel='gaussian',
                     gamma=10.0, l2=0.0, log=None):
  """`interpolate` from accumulated dot products (`Gram`)."""
  t0 = time.time()
  m = gram.kernel(kernel, gamma, l2)
  cross = gram.cross_kernel(kernel, gamma)
  s = len(gram.sample)
  return _solve_and_evaluate(
      m, y_train, y_test, num_classes, l2, gram.sample, t0, log,
      lambda alpha, rows: _rows_times(cross[rows], alpha),
      (slice(0, s), slice(s, None)))


def _rows_times(k, alpha, block=1000):
  """k @ alpha in float64, 1,000 rows at a time (k may be 10,000 x 50,000)."""
  return np.concatenate([k[s:s + block].astype(np.float64) @ alpha
                         for s in range(0, len(k), block)])


def _solve_and_evaluate(m, y_train, y_test, num_classes, l2, sample, t0, log,
                        predict_fn, evals):
  """Factors m, solves for one-hot y, evaluates on (train sample, test)."""
  y = np.eye(num_classes)[y_train]
  t_kernel = time.time() - t0
  m.cholesky(log)
  t_chol = time.time() - t0 - t_kernel
  alpha = m.solve(y)
  t_solve = time.time() - t0 - t_kernel
  tiles_gb = m.nbytes() / 1e9
  del m
  # Residual of the interpolation on a sample of training rows.
  fit = predict_fn(alpha, evals[0])
  # (K + l2 I) alpha = y, so K alpha + l2 alpha - y is the residual.
  resid = fit + (l2 * alpha[sample] if l2 else 0) - y[sample]
  pred = predict_fn(alpha, evals[1])
  # alpha^T K alpha = alpha^T (K + l2 I) alpha - l2 |alpha|^2
  #                 = y . alpha - l2 |alpha|^2: the fitted function's norm
  # (with a ridge, y . alpha alone only bounds it from above).
  norm2 = np.sum(y * alpha) - l2 * np.sum(alpha * alpha)
  return {
      'test_error': float(np.mean(pred.argmax(1) != y_test)),
      'train_error_sample': float(np.mean(fit.argmax(1) != y_train[sample])),
      'rkhs_norm': float(math.sqrt(max(norm2, 0.0))),
      'max_abs_residual': float(np.abs(resid).max()),
      'max_abs_interpolation_residual': float(np.abs(fit - y[sample]).max()),
      'kernel_seconds': round(t_kernel, 2),
      'cholesky_seconds': round(t_chol, 2),
      # A Cholesky of order n takes n^3 / 3 flops.
      'cholesky_gflops': round(len(y) ** 3 / 3 / max(t_chol, 1e-9) / 1e9, 1),
      'solve_seconds': round(t_solve, 2),
      'total_seconds': round(time.time() - t0, 2),
      'matrix_gb': round(tiles_gb, 2),
      'peak_memory_gb': round(peak_memory_gb(), 2),
  }

