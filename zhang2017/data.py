"""Dataset sources: uint8 images and int labels, train and test, in memory.

`load(name, data_dir)` looks for local copies first, in this order:

* cifar10: `cifar10-jpeg.zip` (image-folder zip, as in `../shared/data`), the
  official `cifar-10-python.tar.gz` / `cifar-10-batches-py/`, the official
  `cifar-10-binary.tar.gz` / `cifar-10-batches-bin/`;
* mnist: the four IDX files (`.gz` or plain);

each directly in `data_dir` or in `data_dir/<name>/`. Without a local copy it
falls back to a prepared tfds dataset under `data_dir` (never downloads).
`data_dir` defaults to `$ZHANG2017_DATA_DIR`, then to tfds' default directory.

Decoded arrays are cached as `.npz` (keyed by the source files' sha256) in
`$ZHANG2017_CACHE_DIR` or `~/.cache/zhang2017`, so the JPEG copy of CIFAR-10
is decoded once per machine. ImageNet is streamed: see `imagenet.py`.
"""

import dataclasses
import glob
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np

from zhang2017.errors import UserError

DATASETS = ('cifar10', 'mnist', 'imagenet')
_NUM_CLASSES = {'cifar10': 10, 'mnist': 10, 'imagenet': 1000}
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck')
_DATA_HINT = ('pass --data_dir=DIR or set ZHANG2017_DATA_DIR to a folder '
              'holding the dataset (e.g. ../shared/data)')


@dataclasses.dataclass
class Dataset:
  """Images (N, H, W, C) uint8 (float32 after gaussian corruption), labels int64."""
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  source: str  # what was read: file name and sha256 prefix, or tfds


def default_data_dir(data_dir=None):
  """`data_dir`, else $ZHANG2017_DATA_DIR, else None (tfds' default)."""
  return data_dir or os.environ.get('ZHANG2017_DATA_DIR') or None


def load(name, data_dir=None):
  """Loads a whole in-memory dataset.

  Args:
    name: 'cifar10' or 'mnist'.
    data_dir: folder to search; see the module docstring.

  Returns:
    A `Dataset`.

  Raises:
    UserError: unknown name, missing folder, or a damaged file.
  """
  if name not in ('cifar10', 'mnist'):
    raise UserError(f'unknown dataset {name!r} for in-memory loading; '
                    'use --dataset=cifar10 or --dataset=mnist')
  data_dir = default_data_dir(data_dir)
  if data_dir is not None and os.path.isfile(data_dir):
    raise UserError(f'--data_dir={data_dir} is a file; pass the folder that '
                    f'holds it (--data_dir={os.path.dirname(data_dir) or "."})')
  if data_dir is not None and not os.path.isdir(data_dir):
    raise UserError(f'data directory {data_dir!r} does not exist; {_DATA_HINT}')
  dirs = [] if data_dir is None else [data_dir, os.path.join(data_dir, name)]
  finder = _find_cifar10 if name == 'cifar10' else _find_mnist
  for d in dirs:
    found = finder(d)
    if found:
      reader, paths = found
      return _cached(name, paths, reader)
  return _load_tfds(name, data_dir)


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


def _cached(name, paths, reader):
  digest = hashlib.sha256(''.join(_sha256(p) for p in paths).encode())
  key = digest.hexdigest()[:16]
  source = ', '.join(os.path.basename(p.rstrip('/')) for p in paths)
  source = f'{source} (sha256 {key})'
  cache = os.path.join(cache_dir(), f'{name}-{key}.npz')
  if os.path.exists(cache):
    try:
      with np.load(cache) as z:
        arrays = {k: z[k] for k in ('x_train', 'y_train', 'x_test', 'y_test')}
      return Dataset(name, num_classes=_NUM_CLASSES[name], source=source,
                     **arrays)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
      pass  # A damaged cache is rebuilt below.
  xtr, ytr, xte, yte = reader(*paths)
  ds = Dataset(name, xtr, ytr.astype(np.int64), xte, yte.astype(np.int64),
               _NUM_CLASSES[name], source)
  _check(ds, paths)
  try:
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = f'{cache}.tmp{os.getpid()}.npz'
    np.savez(tmp, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test,
             y_test=ds.y_test)
    os.replace(tmp, cache)
  except OSError:
    pass  # The cache is an optimisation; a read-only home is fine.
  return ds


def _check(ds, paths):
  for split in ('train', 'test'):
    x, y = getattr(ds, f'x_{split}'), getattr(ds, f'y_{split}')
    if len(x) != len(y) or len(x) == 0:
      raise UserError(f'{paths[0]}: {split} split has {len(x)} images and '
                      f'{len(y)} labels; replace the damaged file')
    if y.min() < 0 or y.max() >= ds.num_classes:
      raise UserError(f'{paths[0]}: {split} labels outside 0..'
                      f'{ds.num_classes - 1}; replace the damaged file')


# ---------------------------------------------------------------- CIFAR-10


def _find_cifar10(d):
  for fname, reader in (('cifar10-jpeg.zip', _read_cifar_zip),
                        ('cifar-10-python.tar.gz', _read_cifar_python),
                        ('cifar-10-batches-py', _read_cifar_python),
                        ('cifar-10-binary.tar.gz', _read_cifar_binary),
                        ('cifar-10-batches-bin', _read_cifar_binary)):
    p = os.path.join(d, fname)
    if os.path.exists(p):
      return reader, [p]
  return None


def _read_cifar_zip(path):
  """Image-folder zip: {train,test}/<class>/NNNN.jpg, classes sorted = ids."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    z = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise UserError(f'{path} is not a readable zip ({e}); download it again '
                    'or point --data_dir elsewhere') from e
  out = {}
  with z:
    names = [n for n in z.namelist() if not n.endswith('/')]
    for split in ('train', 'test'):
      files = sorted(n for n in names if n.startswith(split + '/'))
      classes = sorted({n.split('/')[1] for n in files})
      if tuple(classes) != CIFAR10_CLASSES:
        raise UserError(f'{path}: expected folders {split}/<class> for the 10 '
                        f'CIFAR-10 classes, found {classes[:12]}; replace the file')
      xs = np.empty((len(files), 32, 32, 3), np.uint8)
      ys = np.empty(len(files), np.int64)
      for i, n in enumerate(files):
        try:
          img = Image.open(io.BytesIO(z.read(n))).convert('RGB')
        except Exception as e:  # Pillow raises many types for bad bytes.
          raise UserError(f'{path}: cannot decode {n} ({e}); replace the '
                          'damaged zip') from e
        if img.size != (32, 32):
          raise UserError(f'{path}: {n} is {img.size[0]}x{img.size[1]}, not '
                          '32x32; this is not CIFAR-10')
        xs[i] = np.asarray(img)
        ys[i] = classes.index(n.split('/')[1])
      out[split] = (xs, ys)
  return out['train'] + out['test']


_PY_BATCHES = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
_BIN_BATCHES = [f'{b}.bin' for b in _PY_BATCHES]


def _members(path, folder, names):
  """{name: bytes} from a .tar.gz archive holding `folder`, or that folder."""
  try:
    if os.path.isdir(path):
      out = {}
      for n in names:
        with open(os.path.join(path, n), 'rb') as f:
          out[n] = f.read()
      return out
    with tarfile.open(path) as t:
      return {n: t.extractfile(f'{folder}/{n}').read() for n in names}
  except (OSError, KeyError, tarfile.TarError, EOFError) as e:
    raise UserError(f'{path} is incomplete or damaged ({e}); replace it') from e


def _read_cifar_python(path):
  raw = _members(path, 'cifar-10-batches-py', _PY_BATCHES)
  xs, ys = [], []
  for b in _PY_BATCHES:
    d = pickle.loads(raw[b], encoding='bytes')
    xs.append(np.asarray(d[b'data'], np.uint8).reshape(-1, 3, 32, 32)
              .transpose(0, 2, 3, 1))
    ys.append(np.asarray(d[b'labels'], np.int64))
  return (np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5])


def _read_cifar_binary(path):
  raw = _members(path, 'cifar-10-batches-bin', _BIN_BATCHES)
  parts = []
  for b in _BIN_BATCHES:
    rows = np.frombuffer(raw[b], np.uint8)
    if rows.size % 3073:
      raise UserError(f'CIFAR-10 binary batch {b} has {rows.size} bytes, not '
                      'a multiple of 3073; replace the damaged file')
    rows = rows.reshape(-1, 3073)
    parts.append((rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                  rows[:, 0].astype(np.int64)))
  return (np.concatenate([p[0] for p in parts[:5]]),
          np.concatenate([p[1] for p in parts[:5]]), parts[5][0], parts[5][1])


# ---------------------------------------------------------------- MNIST

_MNIST_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
                't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _find_mnist(d):
  paths = []
  for f in _MNIST_FILES:
    for candidate in (f + '.gz', f):
      if os.path.exists(os.path.join(d, candidate)):
        paths.append(os.path.join(d, candidate))
        break
  return (_read_mnist, paths) if len(paths) == 4 else None


def read_idx(path, ndim):
  """Reads an IDX file (optionally gzipped), checking magic number and size."""
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise UserError(f'{path} cannot be read ({e}); replace the damaged '
                    'file') from e
  magic = int.from_bytes(raw[:4], 'big') if len(raw) >= 4 else -1
  if magic != 0x800 + ndim:
    raise UserError(f'{path} has IDX magic {magic:#x}, expected '
                    f'{0x800 + ndim:#x} (uint8, {ndim}-d); this is not the '
                    'right MNIST file')
  dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
  body = raw[4 + 4 * ndim:]
  if len(body) != int(np.prod(dims)):
    raise UserError(f'{path} holds {len(body)} bytes of data but its header '
                    f'says {dims}; the file is truncated, replace it')
  return np.frombuffer(body, np.uint8).reshape(dims)


def _read_mnist(xtr, ytr, xte, yte):
  out = []
  for path, ndim in ((xtr, 3), (ytr, 1), (xte, 3), (yte, 1)):
    a = read_idx(path, ndim)
    if ndim == 3:
      if a.shape[1:] != (28, 28):
        raise UserError(f'{path} holds {a.shape[1]}x{a.shape[2]} images, not '
                        '28x28; this is not MNIST')
      a = a[..., None]
    out.append(a)
  return tuple(out)


# ---------------------------------------------------------------- tfds


def _load_tfds(name, data_dir):
  """A tfds dataset already prepared under data_dir; never downloads."""
  root = data_dir or os.path.join(os.path.expanduser('~'), 'tensorflow_datasets')
  # Look before calling tfds: it logs warnings about (and may create)
  # version folders for datasets that are not there.
  prepared = glob.glob(os.path.join(root, name, '*', 'dataset_info.json'))
  if not prepared:
    raise UserError(f'no {name} data found in {root} (no local files, no '
                    f'prepared tfds dataset); {_DATA_HINT}')
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError(f'{root} holds a tfds {name} dataset but '
                    'tensorflow_datasets is not installed; pip install '
                    'tensorflow-datasets') from None
  builder = tfds.builder_from_directory(os.path.dirname(sorted(prepared)[-1]))
  arrays = []
  for split in ('train', 'test'):
    ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    arrays += [ds['image'], ds['label']]
  xtr, ytr, xte, yte = arrays
  return Dataset(name, np.asarray(xtr, np.uint8), np.asarray(ytr, np.int64),
                 np.asarray(xte, np.uint8), np.asarray(yte, np.int64),
                 _NUM_CLASSES[name], f'tfds {name} in {builder.data_dir}')


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
