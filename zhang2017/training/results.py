"""The result file: schema, provenance, atomic writes, loading.

A run directory is complete exactly when its `result.json` exists; every file
here is written to a temporary name and renamed, so a killed process never
leaves a truncated one.
"""

import csv
import functools
import io
import json
import os
import platform
import subprocess
import tempfile

import numpy as np

RESULT = 'result.json'
HISTORY = 'history.csv'
EXAMPLES = 'examples.npz'  # Per-example records (memorization.py).
# The keys of every run's result.json, in-memory or streamed data alike
# (README "Result files" explains each); tests hold runs to this list.
RESULT_KEYS = (
    'status', 'train_accuracy', 'test_accuracy', 'train_top5', 'test_top5',
    'train_loss', 'test_loss', 'train_accuracy_running',
    'train_accuracy_changed', 'train_accuracy_kept', 'epochs',
    'epochs_to_fit', 'steps_to_fit', 'steps_per_epoch', 'train_size',
    'train_eval_size', 'test_size', 'params', 'weights_fingerprint', 'flags',
    'corruption', 'provenance')
# The repository's root: default home of flags/ and results/.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(_PACKAGE)


def atomic_write(path, text):
  """Writes `text` to `path` via a temporary file and an atomic rename."""
  d = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=d, prefix='.' + os.path.basename(path))
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def atomic_savez(path, compressed=False, **arrays):
  """np.savez (np.savez_compressed if `compressed`) to `path` via a temporary
  file of this process and a rename: a kill mid-write leaves the previous
  file as it was."""
  tmp = f'{path}.tmp{os.getpid()}.npz'
  try:
    (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_json(path, obj):
  atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def write_csv(path, rows):
  """Writes a list of dicts (same keys) as CSV, atomically."""
  buf = io.StringIO()
  if rows:
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator='\n')
    w.writeheader()
    w.writerows(rows)
  atomic_write(path, buf.getvalue())


def read_csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def load(run_dir):
  """The result dict of a complete run, or None if the run is not complete."""
  path = os.path.join(run_dir, RESULT)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _fraction(mask):
  """The fraction of a boolean mask that is true (None: empty or absent)."""
  return float(mask.mean()) if mask is not None and mask.size else None


def epoch_row(epoch, steps_per_epoch, cfg, losses, train, test, changed,
              seconds):
  """One epoch's row of history.csv: (loss, running accuracy) of training,
  the (loss, correct, top-5, margins) evaluations of both splits, the mask
  of changed labels (None: unknown)."""
  (train_loss, running), (eval_loss, correct, top5, _) = losses, train
  test_loss, test_correct, test_top5, _ = test
  return {
      'epoch': epoch + 1,
      'step': (epoch + 1) * steps_per_epoch,
      'learning_rate': cfg.lr * cfg.lr_decay ** epoch,
      'train_loss': train_loss,
      'train_accuracy_running': running,
      'train_eval_loss': eval_loss,
      'train_accuracy': _fraction(correct),
      'train_top5': _fraction(top5),
      'test_loss': test_loss,
      'test_accuracy': _fraction(test_correct),
      'test_top5': _fraction(test_top5),
      'train_accuracy_changed': (None if changed is None
                                 else _fraction(correct[changed])),
      'train_accuracy_kept': (None if changed is None
                              else _fraction(correct[~changed])),
      'seconds': round(seconds, 3),
  }


@functools.lru_cache(maxsize=None)
def git_commit():
  """HEAD of the checkout this package runs from (+ '-dirty'), or 'unknown'.

  Cached: the binaries call it when they start, so a result records the code
  it was run with, not edits made to the checkout while it ran.

  $ZHANG2017_GIT_COMMIT wins: a copy of the tree without .git (the lent GPU
  machine) is told the commit it was made from.
  """
  if os.environ.get('ZHANG2017_GIT_COMMIT'):
    return os.environ['ZHANG2017_GIT_COMMIT']
  here = _PACKAGE  # 'dirty' means an edit anywhere in the package.
  try:
    def git(*args):
      return subprocess.run(('git',) + args, cwd=here, capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    commit = git('rev-parse', 'HEAD')
    dirty = git('status', '--porcelain', '--untracked-files=no', '--', '.')
    return commit + ('-dirty' if dirty else '')
  except (OSError, subprocess.SubprocessError):
    return 'unknown'


def _cpu_name():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def cpu_description():
  """The host CPU and the cores this process may use (JAX's and TF's CPU
  numerics depend on both)."""
  visible = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else os.cpu_count())
  return {'model': _cpu_name(), 'cores': os.cpu_count(),
          'cores_visible': visible}


def device_description():
  """The accelerator the backend runs on, e.g. 'gpu: NVIDIA H200' or 'cpu: ...'."""
  import keras  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  names = []
  if backend == 'jax':
    import jax  # pylint: disable=g-import-not-at-top
    names = [d.device_kind for d in jax.devices() if d.platform != 'cpu']
  elif backend == 'tensorflow':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for d in tf.config.list_physical_devices('GPU'):
      names.append(tf.config.experimental.get_device_details(d).get(
          'device_name', d.name))
  if names:
    return f'{len(names)}x gpu: {names[0]}'
  return f'cpu: {_cpu_name()} ({os.cpu_count()} cores)'


def provenance(dataset_source, wall_seconds, precision):
  """How a result was obtained: code, software, hardware, data, time."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  versions = {'keras': keras.__version__, 'numpy': np.__version__,
              'python': platform.python_version()}
  if backend == 'tensorflow':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    versions['tensorflow'] = tf.__version__
  elif backend == 'jax':
    import jax  # pylint: disable=g-import-not-at-top
    versions['jax'] = jax.__version__
  return {
      'git_commit': git_commit(),
      'backend': backend,
      'versions': versions,
      'device': device_description(),
      'cpu': cpu_description(),
      'precision': precision,
      'dataset_source': dataset_source,
      'wall_seconds': round(wall_seconds, 2),
  }


def earlier_sittings(meta):
  """The sitting log of a checkpoint's meta (None: a new run): one entry
  per sitting with its commit, device and epochs. A checkpoint written before
  the log existed gets one entry for all its epochs, device not recorded."""
  if not meta:
    return []
  if 'sitting_log' in meta:
    return [dict(s) for s in meta['sitting_log']]
  return [{'git_commit': None, 'device': None, 'first_epoch': 1,
           'last_epoch': len(meta['history']),
           'note': 'not recorded: checkpoint predates the sitting log; '
                   'commits: ' + ', '.join(meta.get('commits', []))}]


def provenance_cell(r):
  """A result's provenance in one short cell: backend, device, precision,
  dataset file, commit."""
  p = r['provenance']
  devices = [s['device'] or 'unrecorded' for s in p.get('sitting_log', [])]
  devices = list(dict.fromkeys(devices)) or [p['device']]
  if 'sitting_log' not in p and p.get('sittings', 1) > 1:
    # Written before the log: `device` is the last sitting's only.
    devices = [f'{devices[0]} (last of {p["sittings"]} sittings)']
  return (f'{p["backend"]}, {" + ".join(devices)}, '
          f'{p.get("precision", "float32")}, '
          f'{p["dataset_source"].split(" (")[0].split(",")[0]}, '
          f'{p["git_commit"][:7]}')
