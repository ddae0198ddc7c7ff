"""File formats of the in-memory datasets: each reader returns
(x_train, y_train, x_test, y_test) numpy arrays, or raises a one-line
UserError that names the damaged file. (tfds: `tfds_datasets.py`; the
user's image folders: `plugins.py`.)

`find(name, folder)` says which reader applies to the files in a folder.
"""

import gzip
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np

from zhang2017.errors import UserError

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck')


def find(name, d):
  """(reader, paths) for `name`'s files in folder `d`, or None."""
  return (_find_cifar10 if name == 'cifar10' else _find_mnist)(d)


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
