"""tfds as a source: a dataset prepared under the data folder
(`--dataset=tfds:NAME[/CONFIG]`, and the built-ins' fallback), and the
online path that prepares the built-in CIFAR-10 / MNIST there on first use.

Reading never downloads. `download` does, through tfds'
`download_and_prepare` (with its progress bars), only when allowed:
ZHANG2017_DOWNLOAD=1 always tries, =0 never (the test suite sets it), and
unset it tries when tensorflow_datasets is installed and the dataset's
server accepts a connection within 2 s, so an offline machine gets its
one-line error at once.
"""

import contextlib
import glob
import os
import socket
import sys
import threading

import numpy as np

from zhang2017.errors import UserError


def _version(path):
  """A prepared folder's version as a tuple of ints, for choosing the newest."""
  parts = os.path.basename(os.path.dirname(path)).split('.')
  return tuple(int(p) if p.isdigit() else -1 for p in parts)


def _root(data_dir):
  return data_dir or os.path.join(os.path.expanduser('~'), 'tensorflow_datasets')


def load_tfds(name, data_dir, hint, missing='no local files, no prepared '
              'tfds dataset'):
  """A tfds dataset prepared under data_dir (never downloads).

  Args:
    name: 'NAME' or 'NAME/CONFIG'.
    data_dir: the tfds data folder (None: tfds' default).
    hint: how to supply the data, for the error when it is not there.
    missing: what was looked for, for that error.

  Returns:
    ((x_train, y_train, x_test, y_test), num_classes, source).
  """
  root = _root(data_dir)
  # Look before calling tfds: it logs warnings about (and may create)
  # version folders for datasets that are not there.
  prepared = glob.glob(os.path.join(root, name, '*', 'dataset_info.json'))
  if not prepared:
    configs = sorted({p.split(os.sep)[-3] for p in glob.glob(
        os.path.join(root, name, '*', '*', 'dataset_info.json'))})
    if configs and '/' not in name:
      raise UserError(f'tfds {name} in {root} has configs '
                      f'{", ".join(configs[:8])}; use --dataset=tfds:{name}/'
                      'CONFIG')
    raise UserError(f'no {name} data found in {root} ({missing}); {hint}')
  tfds = _import_tfds()
  if tfds is None:
    raise UserError(f'{root} holds a tfds {name} dataset but '
                    'tensorflow_datasets is not installed; pip install '
                    'tensorflow-datasets')
  with _quiet_absl():
    return _read(tfds, name, os.path.dirname(max(prepared, key=_version)))


def _read(tfds, name, folder):
  builder = tfds.builder_from_directory(folder)
  keys = builder.info.supervised_keys
  image, label = (keys[:2] if keys and all(isinstance(k, str) for k in keys[:2])
                  else ('image', 'label'))
  features = dict(builder.info.features.items())
  shape = getattr(features.get(image), 'shape', None)
  classes = getattr(features.get(label), 'num_classes', None)
  if not shape or None in shape or not classes:
    raise UserError(f'tfds {name} has features {image}: {shape}, {label}: '
                    f'{classes} classes; --dataset=tfds: needs images of one '
                    'size and a ClassLabel (else use package.module:function)')
  for split in ('train', 'test'):
    if split not in builder.info.splits:
      raise UserError(f'tfds {name} has splits {", ".join(builder.info.splits)}'
                      f', no {split!r}; use package.module:function to choose '
                      'them')
  arrays = []
  for split in ('train', 'test'):
    ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    x = np.asarray(ds[image], np.uint8)
    arrays += [x if x.ndim == 4 else x[..., None],
               np.asarray(ds[label], np.int64)]
  return tuple(arrays), int(classes), f'tfds {name} in {builder.data_dir}'


def _import_tfds():
  """tensorflow_datasets (None if not installed), imported with fd 2 silenced:
  TensorFlow under it logs C++ start-up lines (oneDNN) before it reads
  TF_CPP_MIN_LOG_LEVEL, which would break a bad input's one-line error."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    return tfds
  except ImportError:
    return None
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


@contextlib.contextmanager
def _quiet_absl():
  """tfds' INFO lines (dataset info, readers) off while it reads."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  level = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(level)


_HOSTS = {'cifar10': 'www.cs.toronto.edu', 'mnist': 'storage.googleapis.com'}


def online(host, timeout=2.0):
  """Whether `host`:443 accepts a connection within `timeout` seconds
  (name lookup included: the probe runs in a thread that is not waited for
  beyond the timeout)."""
  reached = []

  def probe():
    try:
      socket.create_connection((host, 443), timeout=timeout).close()
      reached.append(True)
    except OSError:
      pass
  t = threading.Thread(target=probe, daemon=True)
  t.start()
  t.join(timeout + 0.5)
  return bool(reached)


def download(name, data_dir, log):
  """Prepares the built-in `name` under data_dir with tfds, when allowed.

  ZHANG2017_DOWNLOAD=0 never downloads, =1 always tries; unset, it tries
  when tensorflow_datasets is installed and `name`'s server answers within
  2 s. tfds shows its own progress bars.

  Returns:
    Whether the dataset was downloaded and prepared.
  """
  allowed = os.environ.get('ZHANG2017_DOWNLOAD', '')
  if allowed == '0':
    return False
  if allowed != '1' and not online(_HOSTS[name]):
    return False  # Before importing tfds (and TensorFlow): seconds offline.
  tfds = _import_tfds()
  if tfds is None:
    return False
  builder = tfds.builder(name, data_dir=_root(data_dir))
  log(f'downloading {name} with tensorflow_datasets into {builder.data_dir} '
      '(once; ZHANG2017_DOWNLOAD=0 turns this off)')
  try:
    builder.download_and_prepare()
  except Exception as e:  # pylint: disable=broad-except  # Network, disk.
    raise UserError(f'downloading {name} failed ({" ".join(str(e).split())}'
                    '); download it yourself and pass --data_dir=DIR or set '
                    'ZHANG2017_DATA_DIR') from e
  return True
