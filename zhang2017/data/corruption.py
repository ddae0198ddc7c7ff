"""The paper's randomization tests (Section 2.1), drawn once from a seed.

Pure numpy: the corrupted dataset is a function of (dataset, kind,
probability, seed) only, so it is byte-identical on every machine and on the
TensorFlow and JAX backends (numpy's PCG64 generator is platform-independent).

Decisions on what the paper leaves unstated (README "Randomization tests"):

* Label and pixel corruptions draw from independent streams,
  `default_rng([seed, 1])` and `default_rng([seed, 2])`, so e.g. random labels
  with seed 0 are the same labels with or without shuffled pixels.
* partial labels: each training label is, with probability p, replaced by a
  class drawn uniformly from all K classes (it may redraw the old one, so about
  p(1 - 1/K) change). `random` is p = 1. Test labels are never touched.
* A "pixel" is one spatial position with all its channels (an RGB triple stays
  together), so colours are kept and only positions move.
* shuffled pixels: one permutation, applied to training and test images.
* random pixels: an independent permutation per image, training and test.
* gaussian: every training and test image is replaced by noise drawn with the
  training set's per-channel mean and standard deviation (float32, in the
  0..255 pixel scale, not clipped, so the moments match exactly in
  expectation).
"""

import dataclasses
import hashlib

import numpy as np

LABEL_KINDS = ('true', 'partial', 'random')
PIXEL_KINDS = ('none', 'shuffled', 'random', 'gaussian')


def corrupt_labels(y, num_classes, prob, rng):
  """Replaces each label with probability `prob` by a uniform class.

  Returns:
    (new labels, boolean mask of the labels that actually changed).
  """
  y = np.asarray(y, np.int64)
  replace = rng.random(len(y)) < prob
  drawn = rng.integers(0, num_classes, len(y))
  new = np.where(replace, drawn, y)
  return new, new != y


def shuffle_pixels(images, perm):
  """Applies one permutation of spatial positions to every image."""
  n, h, w, c = images.shape
  return images.reshape(n, h * w, c)[:, perm].reshape(n, h, w, c)


def random_pixels(images, rng, draws_per_chunk=1 << 22):
  """Applies an independent permutation of spatial positions to each image.

  The permutations are argsorts of uniform draws, made for a chunk of images
  at a time (about `draws_per_chunk` draws: 32 MB, whatever the image size)
  from the one stream, so they are those of a single (N, H * W) draw.
  """
  n, h, w, c = images.shape
  flat = images.reshape(n, h * w, c)
  out = np.empty_like(flat)
  step = max(1, draws_per_chunk // (h * w))
  for i in range(0, n, step):
    perms = np.argsort(rng.random((min(step, n - i), h * w)), axis=1)
    out[i:i + step] = np.take_along_axis(flat[i:i + step], perms[:, :, None],
                                         axis=1)
  return out.reshape(n, h, w, c)


def gaussian_like(images, mean, std, rng):
  """Gaussian noise images with the given per-channel mean and std."""
  noise = rng.standard_normal(images.shape, dtype=np.float32)
  return noise * np.float32(std) + np.float32(mean)


def fingerprint(x, y):
  """sha256 (first 16 hex digits) of a training set's images and labels."""
  h = hashlib.sha256()
  x = np.ascontiguousarray(x)
  h.update(f'{x.dtype.str}{x.shape}'.encode())
  h.update(x.tobytes())
  h.update(np.ascontiguousarray(y, '<i8').tobytes())
  return h.hexdigest()[:16]


def apply(ds, labels='true', corrupt_prob=0.0, pixels='none', seed=0):
  """Applies one label and one pixel randomization to a dataset.

  Args:
    ds: a `data.Dataset`.
    labels: 'true', 'partial' (with `corrupt_prob`) or 'random'.
    corrupt_prob: p for partial labels (ignored otherwise; random means 1).
    pixels: 'none', 'shuffled', 'random' or 'gaussian'.
    seed: integer seed; the whole corruption is a function of it.

  Returns:
    (corrupted dataset, record dict, boolean mask over training examples whose
    label changed). The record holds kind, probability, seed, the changed
    fraction and the fingerprint of the corrupted training set.
  """
  if labels not in LABEL_KINDS:
    raise ValueError(f'labels must be one of {LABEL_KINDS}, got {labels!r}')
  if pixels not in PIXEL_KINDS:
    raise ValueError(f'pixels must be one of {PIXEL_KINDS}, got {pixels!r}')
  prob = {'true': 0.0, 'random': 1.0}.get(labels, float(corrupt_prob))
  if not 0.0 <= prob <= 1.0:
    raise ValueError(f'corrupt_prob must be in [0, 1], got {prob}')

  y_train, changed = ds.y_train, np.zeros(len(ds.y_train), bool)
  if prob > 0:
    y_train, changed = corrupt_labels(
        ds.y_train, ds.num_classes, prob, np.random.default_rng([seed, 1]))

  x_train, x_test = ds.x_train, ds.x_test
  rng = np.random.default_rng([seed, 2])
  if pixels == 'shuffled':
    perm = rng.permutation(x_train.shape[1] * x_train.shape[2])
    x_train, x_test = shuffle_pixels(x_train, perm), shuffle_pixels(x_test, perm)
  elif pixels == 'random':
    x_train, x_test = random_pixels(x_train, rng), random_pixels(x_test, rng)
  elif pixels == 'gaussian':
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64)
    x_train = gaussian_like(x_train, mean, std, rng)
    x_test = gaussian_like(x_test, mean, std, rng)

  out = dataclasses.replace(ds, x_train=x_train, y_train=y_train,
                            x_test=x_test)
  record = {
      'labels': labels,
      'corrupt_prob': prob,
      'pixels': pixels,
      'seed': int(seed),
      'changed_fraction': float(changed.mean()),
      'num_changed': int(changed.sum()),
      'fingerprint': fingerprint(x_train, y_train),
  }
  return out, record, changed
