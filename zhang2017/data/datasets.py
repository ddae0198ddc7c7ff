"""Dataset sources: uint8 images and int labels, train and test, in memory.

`load(name, data_dir)` looks for local copies first, in this order:

* cifar10: `cifar10-jpeg.zip` (image-folder zip, as in `../shared/data`), the
  official `cifar-10-python.tar.gz` / `cifar-10-batches-py/`, the official
  `cifar-10-binary.tar.gz` / `cifar-10-batches-bin/`;
* mnist: the four IDX files (`.gz` or plain);

each directly in `data_dir` or in `data_dir/<name>/`. Without a local copy it
falls back to a prepared tfds dataset under `data_dir`, and to preparing one
there with tfds when online (`tfds_datasets.download`).
`data_dir` defaults to `$ZHANG2017_DATA_DIR`, then to tfds' default directory.
The user's datasets (`tfds:NAME`, `folder:PATH`, `package.module:function`)
are read in `plugins.py`.

The file formats are read in `readers.py`. Decoded arrays are cached as
`.npz` (keyed by the source files' sha256) in `$ZHANG2017_CACHE_DIR` or
`~/.cache/zhang2017`, so the JPEG copy of CIFAR-10 (or a user's image folder)
is decoded once per machine. ImageNet is streamed: see `imagenet.py`.
"""

import dataclasses
import hashlib
import os
import sys
from typing import Optional
import zipfile

import numpy as np

from zhang2017.data import plugins
from zhang2017.data import readers
from zhang2017.data import tfds_datasets
from zhang2017.training import results
from zhang2017.errors import UserError

DATASETS = plugins.BUILTIN  # And tfds:NAME, folder:PATH, module:function.
_NUM_CLASSES = {'cifar10': 10, 'mnist': 10, 'imagenet': 1000}
_DATA_HINT = ('pass --data_dir=DIR or set ZHANG2017_DATA_DIR to a folder '
              'holding the dataset (e.g. ../shared/data)')
_TFDS_HINT = ('prepare it there (tfds build NAME --data_dir=DIR) and pass '
              '--data_dir=DIR or set ZHANG2017_DATA_DIR to that folder')


@dataclasses.dataclass
class Dataset:
  """Images (N, H, W, C) uint8 (float32 after gaussian corruption), labels int64.

  A streamed dataset (ImageNet's image folder) holds file names relative to
  `root` in `x_train`/`x_test` instead of images, and its `image_shape`; the
  subset and the label corruption treat both alike.
  """
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  source: str  # what was read: file name and sha256 prefix, or tfds
  root: Optional[str] = None
  image_shape: Optional[tuple] = None

  @property
  def n_train(self):
    return len(self.y_train)

  @property
  def n_test(self):
    return len(self.y_test)

  @property
  def input_shape(self):
    """The model's input shape (H, W, C)."""
    return self.image_shape or self.x_train.shape[1:]


def default_data_dir(data_dir=None):
  """`data_dir`, else $ZHANG2017_DATA_DIR, else None (tfds' default)."""
  return data_dir or os.environ.get('ZHANG2017_DATA_DIR') or None


def check_spec(spec):
  """Checks a `--dataset` value's syntax, loading nothing (`plugins.parse`).

  Raises:
    UserError: an unknown name or a malformed form, in one line.
  """
  plugins.check_spec(spec)


def _stderr(line):
  print(line, file=sys.stderr, flush=True)


def load(name, data_dir=None, log=_stderr):
  """Loads a whole in-memory dataset.

  Args:
    name: a `--dataset` value other than 'imagenet': 'cifar10', 'mnist',
      'tfds:NAME[/CONFIG]', 'folder:PATH' or 'package.module:function'
      (`plugins.py`).
    data_dir: folder to search; see the module docstring.
    log: where the line announcing a download goes.

  Returns:
    A `Dataset`.

  Raises:
    UserError: unknown name, missing folder, or a damaged file.
  """
  kind, arg = plugins.parse(name)
  if name == 'imagenet':
    raise UserError('--dataset=imagenet is streamed, not loaded in memory; '
                    'use --dataset=cifar10 or --dataset=mnist here')
  if kind == 'folder':
    root, classes, files = plugins.scan_folder(arg)
    key = plugins.folder_key(root, files)
    return _cached(name, 'folder', key,
                   f'folder {os.path.abspath(root)} (sha256 {key})',
                   len(classes), lambda: plugins.read_folder(arg, root, files))
  if kind == 'function':
    arrays, num_classes, source = plugins.call_function(arg)
    return Dataset(name, *arrays, num_classes, source)
  data_dir = default_data_dir(data_dir)
  if data_dir is not None and os.path.isfile(data_dir):
    raise UserError(f'--data_dir={data_dir} is a file; pass the folder that '
                    f'holds it (--data_dir={os.path.dirname(data_dir) or "."})')
  if data_dir is not None and not os.path.isdir(data_dir):
    raise UserError(f'data directory {data_dir!r} does not exist; {_DATA_HINT}')
  if kind == 'tfds':
    arrays, num_classes, source = tfds_datasets.load_tfds(
        arg, data_dir, _TFDS_HINT, f'no prepared {arg}/<version>/')
    return Dataset(name, *arrays, num_classes, source)
  dirs = [] if data_dir is None else [data_dir, os.path.join(data_dir, name)]
  for d in dirs:
    found = readers.find(name, d)
    if found:
      reader, paths = found
      key = hashlib.sha256(''.join(_sha256(p) for p in paths).encode())
      key = key.hexdigest()[:16]
      source = ', '.join(os.path.basename(p.rstrip('/')) for p in paths)
      return _cached(name, name, key, f'{source} (sha256 {key})',
                     _NUM_CLASSES[name], lambda: reader(*paths), paths[0])
  try:
    arrays, _, source = tfds_datasets.load_tfds(name, data_dir, _DATA_HINT)
  except UserError:
    if not tfds_datasets.download(name, data_dir, log):
      raise
    arrays, _, source = tfds_datasets.load_tfds(name, data_dir, _DATA_HINT)
  return Dataset(name, *arrays, _NUM_CLASSES[name], source)


# ---------------------------------------------------------------- caching


def _sha256(path):
  h = hashlib.sha256()
  if os.path.isdir(path):
    for root, _, files in sorted(os.walk(path)):
      for f in sorted(files):
        h.update(f.encode())
        h.update(_sha256(os.path.join(root, f)).encode())
    return h.hexdigest()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 22), b''):
      h.update(block)
  return h.hexdigest()


def cache_dir():
  return os.environ.get('ZHANG2017_CACHE_DIR') or os.path.join(
      os.path.expanduser('~'), '.cache', 'zhang2017')


def _cached(name, prefix, key, source, num_classes, read, where=None):
  """The arrays of `read()`, from `<cache_dir>/<prefix>-<key>.npz` when there."""
  cache = os.path.join(cache_dir(), f'{prefix}-{key}.npz')
  if os.path.exists(cache):
    try:
      with np.load(cache) as z:
        arrays = {k: z[k] for k in ('x_train', 'y_train', 'x_test', 'y_test')}
      return Dataset(name, num_classes=num_classes, source=source, **arrays)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
      pass  # A damaged cache is rebuilt below.
  xtr, ytr, xte, yte = read()
  ds = Dataset(name, xtr, ytr.astype(np.int64), xte, yte.astype(np.int64),
               num_classes, source)
  _check(ds, where or name)
  try:
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    results.atomic_savez(cache, x_train=ds.x_train, y_train=ds.y_train,
                         x_test=ds.x_test, y_test=ds.y_test)
  except OSError:
    pass  # The cache is an optimisation; a read-only home is fine.
  return ds


def _check(ds, where):
  for split in ('train', 'test'):
    x, y = getattr(ds, f'x_{split}'), getattr(ds, f'y_{split}')
    if len(x) != len(y) or len(x) == 0:
      raise UserError(f'{where}: {split} split has {len(x)} images and '
                      f'{len(y)} labels; replace the damaged file')
    if y.min() < 0 or y.max() >= ds.num_classes:
      raise UserError(f'{where}: {split} labels outside 0..'
                      f'{ds.num_classes - 1}; replace the damaged file')


# ---------------------------------------------------------------- subsets


def subset(ds, train_size, seed, test_size=None):
  """Fixed, seeded subsets of `train_size` training and `test_size` test
  examples (None: the whole split).

  A subset depends only on (size, seed), so two runs with the same flags see
  the same images whatever the corruption. A run on a subset is never shown
  as a paper row.

  Raises:
    UserError: a size larger than the split.
  """
  for name, size, n in (('train_size', train_size, len(ds.x_train)),
                        ('test_size', test_size, len(ds.x_test))):
    if size is not None and size > n:
      raise UserError(f'--{name}={size} is larger than the {n:,} images of '
                      f'{ds.name}; use at most {n} (or leave it unset)')
  if train_size is not None and train_size < len(ds.x_train):
    rng = np.random.default_rng([seed, 0x5AB5E7])
    idx = np.sort(rng.choice(len(ds.x_train), train_size, replace=False))
    ds = dataclasses.replace(ds, x_train=ds.x_train[idx],
                             y_train=ds.y_train[idx])
  if test_size is not None and test_size < len(ds.x_test):
    rng = np.random.default_rng([seed, 0x7E57])
    idx = np.sort(rng.choice(len(ds.x_test), test_size, replace=False))
    ds = dataclasses.replace(ds, x_test=ds.x_test[idx], y_test=ds.y_test[idx])
  return ds


def synthetic(n_train=256, n_test=64, shape=(32, 32, 3), num_classes=10,
              seed=0, name='synthetic'):
  """Random uint8 images with random labels, for tests of the plumbing."""
  rng = np.random.default_rng(seed)
  return Dataset(
      name, rng.integers(0, 256, (n_train,) + shape, dtype=np.uint8),
      rng.integers(0, num_classes, n_train), rng.integers(
          0, 256, (n_test,) + shape, dtype=np.uint8),
      rng.integers(0, num_classes, n_test), num_classes, 'synthetic')
