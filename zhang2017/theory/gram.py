"""Kernel matrices from features that arrive in chunks (random filters).

`kernel_lib.interpolate` computes kernel tiles straight from the inputs.
With 32,000 random filters a feature matrix would not fit in memory (CIFAR-10:
60,000 x 256,000 floats, 61 GB), but dot products and squared norms add up
over chunks of features; a Gaussian kernel needs only those. `save` and
`load` keep that sum between sittings, so a run longer than one sitting
(32,000 filters on 2 cores: hours) resumes where it stopped.
"""

import json
import os
import time
import zipfile

import numpy as np

from zhang2017.theory import kernel_lib
from zhang2017.theory import random_features
from zhang2017.training import results
from zhang2017.errors import UserError


class Gram:
  """Dot products of features that arrive in column chunks (random filters),
  so no full feature matrix is held: train x train lower tiles, eval x train
  rows (eval = the residual sample of training rows, then the test rows),
  and squared norms; `kernel` and `cross_kernel` then apply the kernel.
  Memory: about 2 n^2 + 4 n n_eval bytes (float32 lower tiles, eval rows),
  whatever the feature count.
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

  def save(self, path, meta):
    """Writes the sums so far and a JSON `meta` record to `path` (.npz),
    atomically (a kill mid-write leaves the previous copy)."""
    arrays = {f't{i}_{j}': v for (i, j), v in self.dots.tiles.items()}
    results.atomic_savez(
        path, cross=self.cross, sq=self.sq, sq_eval=self.sq_eval,
        meta=np.array(json.dumps(dict(meta, dim=self.dim))), **arrays)

  @classmethod
  def load(cls, path, n_train, n_test, tile):
    """(Gram, meta) from `save`'s file; ValueError if its shapes differ."""
    gram = cls(n_train, n_test, tile)
    with np.load(path) as z:
      meta = json.loads(str(z['meta']))
      if (z['cross'].shape != gram.cross.shape or
          z['sq'].shape != gram.sq.shape):
        raise ValueError(f'shapes {z["cross"].shape}, expected '
                         f'{gram.cross.shape}')
      gram.cross, gram.sq, gram.sq_eval = z['cross'], z['sq'], z['sq_eval']
      for i in range(gram.dots.t):
        for j in range(i + 1):
          gram.dots.tiles[i, j] = z[f't{i}_{j}']
    gram.dim = meta['dim']
    return gram, meta

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


def random_feature_gram(x_train, x_test, filters, seed, tile, log=print,
                        chunk=1024, checkpoint=None, key=None,
                        checkpoint_seconds=1200.0):
  """Dot products of the random features, chunk by chunk of filters.

  Args:
    x_train, x_test: (n, 32, 32, 3) images in [0, 1].
    filters, seed: the feature map (`random_features.fit`).
    tile: tile size of the train x train dot products.
    log: progress lines.
    chunk: filters per `Gram.add`.
    checkpoint: an .npz path; the sums so far are saved there every
      `checkpoint_seconds` and after the last chunk (a failed solve then
      restarts from the sums), and resumed from if it exists. A save that
      fails (a full disk) is logged and the sums go on in memory.
    key: JSON-able record of what determines the sums; a checkpoint with
      another key is refused.
    checkpoint_seconds: see checkpoint.

  Returns:
    (gram, wall seconds of earlier sittings, sitting log): the log has one
    entry per sitting, this one last, with its commit, device and the
    filters it summed (`first_filter`, `last_filter`; none in a sitting that
    only resumed the finished sums).
  """
  t0 = time.time()
  gram, earlier, sitting_log = _resume(checkpoint, key, len(x_train),
                                       len(x_test), tile, log)
  g, b = random_features.fit(x_train, filters, seed)
  saved = time.time()
  per_filter = random_features.FEATURES_PER_FILTER
  sitting = {'git_commit': results.git_commit(),
             'device': results.device_description()}
  first = gram.dim // per_filter
  for c in range(first, filters, chunk):
    fm = (g[:, c:c + chunk], b[c:c + chunk])
    gram.add(random_features.transform(x_train, fm),
             random_features.transform(x_test, fm))
    done = min(c + chunk, filters)
    sitting.update(first_filter=first + 1, last_filter=done)
    log(f'random features: filters {done}/{filters} '
        f'({time.time() - t0:.0f}s)')
    if checkpoint and (done == filters or
                       time.time() - saved >= checkpoint_seconds):
      try:
        os.makedirs(os.path.dirname(checkpoint) or '.', exist_ok=True)
        gram.save(checkpoint, {'key': key,
                               'sitting_log': sitting_log + [sitting],
                               'wall_seconds': earlier + time.time() - t0})
        log(f'saved {checkpoint} at {done} filters; the same command resumes')
      except OSError as e:  # A full disk (~8 GB) should not end hours of sums.
        log(f'could not save {checkpoint} ({e}); going on without it (a '
            'resume starts from the last save, if any)')
      saved = time.time()
  return gram, earlier, sitting_log + [sitting]


def _resume(path, key, n_train, n_test, tile, log):
  """(Gram, earlier wall seconds, sitting log): from `path` if it exists."""
  if not path or not os.path.exists(path):
    return Gram(n_train, n_test, tile), 0.0, []
  try:
    gram, meta = Gram.load(path, n_train, n_test, tile)
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise UserError(f'{path} is damaged ({e}); delete it to start the sums '
                    'again') from e
  if meta['key'] != json.loads(json.dumps(key)):
    raise UserError(f'{path} was made with other flags ({meta["key"]}); use '
                    'those, another --output_dir, or delete the file')
  done = gram.dim // random_features.FEATURES_PER_FILTER
  log(f'resuming from {path}: {done} of {key["filters"]} filters '
      f'summed in {meta["wall_seconds"]:.0f}s')
  # A file from before the log: its sittings, commits and devices unknown.
  sitting_log = meta.get('sitting_log') or [
      {'git_commit': None, 'device': None, 'first_filter': 1,
       'last_filter': done, 'note': 'not recorded: gram.npz predates the '
       f'sitting log ({meta.get("sittings", 1)} sittings)'}]
  return gram, meta['wall_seconds'], sitting_log
