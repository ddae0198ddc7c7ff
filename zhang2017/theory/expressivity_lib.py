"""Theorem 1: a depth-two ReLU network with 2n + d weights fits any n labels.

    c(x) = sum_j w_j * max(<a, x> - b_j, 0)

Construction (PAPER.md section 8), with the choices that keep it exact:

* `a` has random integer entries in [-2^24, 2^24], and the pixels are the raw
  integers 0..255, so every projection z_i = <a, x_i> is an exact integer in
  float64 (|z| < 2^53). Distinct images give distinct z with high probability;
  the draw is repeated (next seed) until they are all distinct, so
  consecutive sorted projections differ by at least 1.
* With z sorted, b_1 = z_1 - 1 and b_i = z_{i-1} + 1/8. The kink of unit i
  sits just after the previous point, so the function between points is a
  line through them and the slopes stay of the order of label gap / point
  gap. (Biases just below each z_i would make every slope depend on the
  previous one times a large gap: the weights would grow geometrically.)
* A_ij = max(z_i - b_j, 0) is lower triangular with diagonal z_i - b_i =
  gap_i - 1/8 >= 7/8. Writing S_i = sum_{j<=i} w_j and T_i = sum_{j<=i} b_j w_j,
  row i reads z_i S_i - T_i = y_i, so forward substitution is O(n) in time
  and memory: w_i = (y_i - z_i S_{i-1} + T_{i-1}) / (z_i - b_i).

The residuals in float64 are below 1e-3 on all of CIFAR-10 (z up to ~1e10),
far below the 0.5 that rounding a class id tolerates.
"""

import numpy as np

from zhang2017.errors import UserError

A_RANGE = 1 << 24
BIAS_OFFSET = 0.125


def projection(x, seed):
  """An integer direction a giving distinct exact projections z = x a.

  Returns:
    (a as float64, z as float64, the seed actually used).
  """
  x = np.asarray(x).reshape(len(x), -1)
  xi = x.astype(np.int64)
  for s in range(seed, seed + 100):
    a = np.random.default_rng([s, 8]).integers(-A_RANGE, A_RANGE + 1,
                                                 x.shape[1])
    z = xi @ a  # Exact in int64.
    if len(np.unique(z)) == len(z):
      return a.astype(np.float64), z.astype(np.float64), s
  raise UserError('could not find a projection separating the points: the '
                  'training set holds duplicate images; Theorem 1 needs n '
                  'distinct points (use another --seed or --train_size)')


def biases(z_sorted):
  b = np.empty_like(z_sorted)
  b[0] = z_sorted[0] - 1.0
  b[1:] = z_sorted[:-1] + BIAS_OFFSET
  return b


def solve_structured(z, b, y):
  """Solves A w = y, A_ij = max(z_i - b_j, 0), z and b sorted and interleaved.

  O(n) time and memory: running sums S = sum w_j and T = sum b_j w_j.
  """
  w = np.empty(len(z))
  s = t = 0.0
  for i in range(len(z)):
    w[i] = (y[i] - z[i] * s + t) / (z[i] - b[i])
    s += w[i]
    t += b[i] * w[i]
  return w


def dense_matrix(z, b):
  """A_ij = max(z_i - b_j, 0) as a dense matrix (for checks on small n)."""
  return np.maximum(z[:, None] - b[None, :], 0.0)


def predict_sorted(z, b, w):
  """c at the sorted training projections, O(n) via the same running sums."""
  s = np.cumsum(w)
  t = np.cumsum(b * w)
  return z * s - t


def predict(x, a, b, w, batch=256):
  """c(x) = sum_j w_j relu(<a, x> - b_j) for arbitrary inputs (O(n) each)."""
  z = np.asarray(x).reshape(len(x), -1).astype(np.float64) @ a
  out = np.empty(len(z))
  for i in range(0, len(z), batch):
    out[i:i + batch] = np.maximum(z[i:i + batch, None] - b[None, :], 0) @ w
  return out


def fit(x, y, seed=0):
  """Builds the network for inputs x (n, ...) and real targets y (n,).

  Returns:
    dict with a, b, w (in the order of sorted projections), the sort order,
    the fitted values on the training points, the diagonal's minimum and
    the smallest projection z_min (for `deep_layers`).
  """
  a, z, used_seed = projection(x, seed)
  order = np.argsort(z, kind='stable')
  zs = z[order]
  b = biases(zs)
  ys = np.asarray(y, np.float64)[order]
  w = solve_structured(zs, b, ys)
  fitted = np.empty(len(z))
  fitted[order] = predict_sorted(zs, b, w)
  return {'a': a, 'b': b, 'w': w, 'order': order, 'fitted': fitted,
          'min_diagonal': float(np.min(zs - b)), 'seed': used_seed,
          'z_max_abs': float(np.max(np.abs(z))), 'z_min': float(zs[0])}


def keras_model(a, b, w):
  """The network as a float64 `keras.Model`: d + n + n weights exactly.

  Raises:
    UserError: on JAX without 64-bit floats (JAX_ENABLE_X64=1), where the
      "float64" model would silently run in float32 and miss every label.
  """
  import keras  # pylint: disable=g-import-not-at-top
  if keras.backend.backend() == 'jax':
    import jax  # pylint: disable=g-import-not-at-top
    if not jax.config.jax_enable_x64:
      raise UserError('the Theorem 1 model needs float64; on the JAX backend '
                      'set JAX_ENABLE_X64=1 (JAX computes in float32 '
                      'otherwise)')

  class Offsets(keras.layers.Layer):
    """z -> z - b_j for every unit j (n biases, no other weights)."""

    def __init__(self, n, **kwargs):
      super().__init__(**kwargs)
      self.offsets = self.add_weight(shape=(n,), initializer='zeros',
                                     name='b', dtype='float64')

    def call(self, z):
      return z - self.offsets[None, :]

  d, n = len(a), len(b)
  inputs = keras.Input((d,), dtype='float64')
  z = keras.layers.Dense(1, use_bias=False, dtype='float64', name='a')(inputs)
  h = keras.layers.ReLU(dtype='float64')(Offsets(n, dtype='float64')(z))
  out = keras.layers.Dense(1, use_bias=False, dtype='float64', name='w')(h)
  model = keras.Model(inputs, out)
  model.get_layer('a').set_weights([a[:, None]])
  model.layers[2].set_weights([b])
  model.get_layer('w').set_weights([w[:, None]])
  return model



def deep_layers(a, b, w, z_min, depth):
  """Theorem 1's network rebuilt with `depth` weight layers (depth >= 3) of
  width at most ceil(n / (depth - 2)) + 3 and at most d + 3n + 6 * depth
  nonzero weights: the paper's depth-k variant (width O(n/k), O(n + d)
  weights).

  Layer 1 computes the carrier t = relu(<a, x> - z_min + 1), positive on the
  sample. Each of the next depth - 2 layers holds one block of the n units
  relu(t + z_min - 1 - b_j) = relu(<a, x> - b_j), passes t on, and carries
  the partial sum s = sum_j w_j relu(<a, x> - b_j) of the earlier blocks as
  relu(s) and relu(-s). The linear output adds the last block to s. On the
  sample the output is Theorem 1's c(x); connections not listed are zero.

  Args:
    a, b, w: Theorem 1's network (`fit`), b and w in sorted order.
    z_min: the smallest training projection.
    depth: weight layers, 3 .. n + 2.

  Returns:
    [(W, bias)]: W a scipy.sparse CSR (fan-in, width) matrix; relu after all
    but the last layer.
  """
  from scipy import sparse  # pylint: disable=g-import-not-at-top
  n, shift = len(b), z_min - 1.0
  if not 3 <= depth <= n + 2:
    raise UserError(f'--depth={depth}: use 3 .. {n + 2} (depth 2 is Theorem '
                    '1 itself)')
  layers = [(sparse.csr_matrix(a[:, None]), np.array([-shift]))]
  # The previous layer's outputs: t at 0, then its block's units, then
  # relu(s) and relu(-s) if it has them.
  prev_block, prev_sums, fan_in = None, None, 1

  def sum_entries(col, sign):
    """(rows, cols, values) of s + sum over the previous block, signed."""
    rows = list(range(1, 1 + len(prev_block)))
    vals = list(sign * w[prev_block])
    if prev_sums is not None:
      rows += list(prev_sums)
      vals += [sign, -sign]
    return rows, [col] * len(rows), vals

  for block in np.array_split(np.arange(n), depth - 2):
    width = 1 + len(block) + (2 if prev_block is not None else 0)
    rows = [0] * (1 + len(block))  # t and every unit read t.
    cols = list(range(1 + len(block)))
    vals = [1.0] * (1 + len(block))
    bias = np.concatenate([[0.0], shift - b[block]])
    sums = None
    if prev_block is not None:
      sums = (width - 2, width - 1)
      for col, sign in zip(sums, (1.0, -1.0)):
        r, c, v = sum_entries(col, sign)
        rows, cols, vals = rows + r, cols + c, vals + v
      bias = np.concatenate([bias, [0.0, 0.0]])
    layers.append((sparse.csr_matrix((vals, (rows, cols)),
                                     shape=(fan_in, width)), bias))
    prev_block, prev_sums, fan_in = block, sums, width
  r, c, v = sum_entries(0, 1.0)
  layers.append((sparse.csr_matrix((v, (r, c)), shape=(fan_in, 1)),
                 np.zeros(1)))
  return layers


def deep_predict(layers, x, batch=2048):
  """The deep network's outputs on raw inputs x (n, ...), in float64."""
  x = np.asarray(x).reshape(len(x), -1)
  out = np.empty(len(x))
  for i in range(0, len(x), batch):
    h = x[i:i + batch].astype(np.float64)
    for k, (weights, bias) in enumerate(layers):
      h = np.asarray(weights.T.dot(h.T).T) + bias  # (batch, width)
      if k < len(layers) - 1:
        h = np.maximum(h, 0.0)
    out[i:i + batch] = h[:, 0]
  return out
