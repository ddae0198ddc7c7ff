"""Random convolutional features of colour images, for Section 5's CIFAR-10
row "random convolutional features (32,000 filters)" (the paper cites the
single-layer pipeline of Coates & Ng and gives no other detail).

Exactly what we compute, for images in [0, 1]:
  1. every 6 x 6 x 3 patch at stride 1 (27 x 27 positions on 32 x 32), as a
     108-vector p, normalized: (p - mean p) / sqrt(var p + 10 / 255^2)
     (Coates & Ng's "+10" on the 0-255 scale);
  2. ZCA-whitened: W (p - m), W = U (S + 0.1)^-1/2 U^T from 100,000 seeded
     training patches (Coates & Ng's epsilon 0.1 on normalized patches);
  3. F random filters: i.i.d. normal 108-vectors scaled to unit norm,
     z = f . W (p - m) (so the whitening folds into the filters);
  4. two-sided soft threshold, alpha = 0.25: max(0, z - a), max(0, -z - a);
  5. each of the 2F maps summed over the four quadrants of the 27 x 27
     grid (rows and columns split 14 + 13): 8F features per image.
Pure numpy and seeded: the same features whichever Keras backend is set.
"""

import numpy as np

PATCH = 6
ALPHA = 0.25
NORM_EPS = 10.0 / 255 ** 2
ZCA_EPS = 0.1
FEATURES_PER_FILTER = 8  # 2 signs x 4 quadrants.


def _normalize(p):
  """Subtracts each patch's mean, divides by sqrt(its variance + eps)."""
  p = p - p.mean(-1, keepdims=True)
  p /= np.sqrt(p.var(-1, keepdims=True) + NORM_EPS)
  return p


def _patches(images):
  """(n, 27 * 27, 108) normalized patches of (n, 32, 32, 3) images; each
  patch vector is channel-major, then row, then column."""
  x = np.asarray(images, np.float32)
  win = np.lib.stride_tricks.sliding_window_view(x, (PATCH, PATCH), (1, 2))
  n, h, w = win.shape[:3]  # win: (n, 27, 27, 3, 6, 6).
  return _normalize(win.reshape(n, h * w, -1))


def fit(train_images, num_filters, seed=0, num_patches=100_000):
  """The seeded feature map: (filters G (108, F), bias b (F,)), z = p G + b.

  Args:
    train_images: (n, 32, 32, 3) floats in [0, 1]; only these fit the
      whitening (test images are never looked at).
    num_filters: F.
    seed: seeds the patch sample and the filters.
    num_patches: patches that fit the whitening.
  """
  rng = np.random.default_rng([seed, 0x5EED])
  x = np.asarray(train_images, np.float32)
  idx = rng.integers(0, len(x), num_patches)
  top = rng.integers(0, x.shape[1] - PATCH + 1, (2, num_patches))
  p = np.stack([x[idx, top[0] + i, top[1] + j]  # (num_patches, 3) each.
                for i in range(PATCH) for j in range(PATCH)], -1)
  p = _normalize(p.reshape(num_patches, -1)).astype(np.float64)
  m = p.mean(0)
  s, u = np.linalg.eigh(np.cov(p, rowvar=False))
  zca = (u / np.sqrt(np.maximum(s, 0) + ZCA_EPS)) @ u.T
  f = rng.standard_normal((p.shape[1], num_filters))
  f /= np.linalg.norm(f, axis=0, keepdims=True)
  g = zca @ f
  return g.astype(np.float32), (-m @ g).astype(np.float32)


def _pool_matrix(h):
  """(4, h * h): sums of the four quadrants (split h // 2 + 1, h // 2); the
  reference for `_quadrant_sums`."""
  half = (h + 1) // 2
  rows = np.arange(h) >= half
  quad = (rows[:, None].astype(int) * 2 + rows[None, :]).reshape(-1)
  return (quad[None, :] == np.arange(4)[:, None]).astype(np.float32)


def _quadrant_sums(maps, n, h):
  """(n, 4, F) sums of (n * h * h, F) maps over the four quadrants of the
  h x h grid, in `_pool_matrix`'s order (top left, top right, bottom left,
  bottom right). Sums over slices: 4x faster here than a 4-row matmul."""
  m = maps.reshape(n, h, h, -1)
  half = (h + 1) // 2
  top, bottom = m[:, :half].sum(1), m[:, half:].sum(1)  # (n, h, F) each.
  return np.stack([top[:, :half].sum(1), top[:, half:].sum(1),
                   bottom[:, :half].sum(1), bottom[:, half:].sum(1)], 1)


def transform(images, feature_map, batch=1):
  """8F features of (n, 32, 32, 3) images in [0, 1] (float32).

  One image at a time by default: its 729 x F maps stay in cache across the
  elementwise passes (2.6x faster than 100 at a time on this 2-core machine;
  1, 2 and 4 equally fast), and an image's features are then the same bits
  whichever images it is transformed with. Two passes over each map:
  max(0, z - a), and min(z - a, -2a), whose quadrant sum is -(the sum of
  max(0, -z - a)) - 2a (quadrant size).
  """
  g, b = feature_map
  # z - alpha in one matrix product: a ones column carries b - alpha.
  ga = np.concatenate([g, (b - ALPHA)[None]], 0)
  h = 32 - PATCH + 1
  sizes = _pool_matrix(h).sum(1)[:, None]  # (4, 1): 196, 182, 182, 169.
  out = np.empty((len(images), FEATURES_PER_FILTER * g.shape[1]), np.float32)
  for s in range(0, len(images), batch):
    p = _patches(images[s:s + batch])
    n = len(p)
    p = np.concatenate([p, np.ones(p.shape[:2] + (1,), np.float32)], -1)
    z = p.reshape(n * h * h, -1) @ ga  # 2-D: 1.7x faster than 3-D here.
    pos = _quadrant_sums(np.maximum(z, 0), n, h)  # max(0, z - a)
    np.minimum(z, -2 * ALPHA, out=z)
    neg = -_quadrant_sums(z, n, h) - np.float32(2 * ALPHA) * sizes
    out[s:s + batch] = np.concatenate([pos, neg], -1).reshape(n, -1)
  return out
