"""Shared helpers for the test suites: data location and subprocess runs."""

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_dir():
  """The real datasets: $ZHANG2017_DATA_DIR, else ../shared/data, else None."""
  for d in (os.environ.get('ZHANG2017_DATA_DIR'),
            os.path.join(ROOT, '..', 'shared', 'data')):
    if d and os.path.isdir(os.path.join(d, 'cifar10')):
      return os.path.abspath(d)
  return None


def run_module(module, *args, env=None, timeout=600, cwd=ROOT):
  """Runs `python -m module args` (from the repo root); returns
  CompletedProcess."""
  full_env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3',
              **(env or {})}
  return subprocess.run([sys.executable, '-m', module, *args], cwd=cwd,
                        env=full_env, capture_output=True, text=True,
                        timeout=timeout)


def last_line(text):
  lines = [l for l in text.strip().splitlines() if l.strip()]
  return lines[-1] if lines else ''


def run_workers(module, *args, n=2, env=None, timeout=600):
  """Runs `python -m module args` as n local TF_CONFIG workers at once;
  returns [(returncode, output)] in worker order."""
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(('127.0.0.1', 0))
  workers = [f'localhost:{s.getsockname()[1]}' for s in socks]
  for s in socks:
    s.close()
  procs = []
  for i in range(n):
    # Files, not pipes: a worker blocked on a full pipe would stall the
    # others in the next collective.
    log = tempfile.TemporaryFile('w+')
    full_env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3',
                'KERAS_BACKEND': 'tensorflow', **(env or {}),
                'TF_CONFIG': json.dumps({'cluster': {'worker': workers},
                                         'task': {'type': 'worker',
                                                  'index': i}})}
    procs.append((subprocess.Popen(
        [sys.executable, '-m', module, *args], cwd=ROOT, env=full_env,
        stdout=log, stderr=subprocess.STDOUT), log))
  out = []
  for proc, log in procs:
    proc.wait(timeout=timeout)
    log.seek(0)
    out.append((proc.returncode, log.read()))
    log.close()
  return out


def _idx(array, magic_ndim=None):
  ndim = magic_ndim or array.ndim
  header = (0x800 + ndim).to_bytes(4, 'big') + b''.join(
      d.to_bytes(4, 'big') for d in array.shape)
  return header + array.astype(np.uint8).tobytes()


def mnist_dir(root, damage=None):
  """A tiny MNIST folder in IDX format (20 training, 10 test images), with
  one file damaged: 'header', 'truncated', 'size', 'gzip' or None."""
  rng = np.random.default_rng(0)
  files = {
      'train-images-idx3-ubyte': _idx(rng.integers(0, 256, (20, 28, 28))),
      'train-labels-idx1-ubyte': _idx(rng.integers(0, 10, 20)),
      't10k-images-idx3-ubyte': _idx(rng.integers(0, 256, (10, 28, 28))),
      't10k-labels-idx1-ubyte': _idx(rng.integers(0, 10, 10)),
  }
  if damage == 'header':
    files['train-images-idx3-ubyte'] = _idx(
        rng.integers(0, 256, (20, 28, 28)), magic_ndim=1)
  elif damage == 'truncated':
    files['train-labels-idx1-ubyte'] = files['train-labels-idx1-ubyte'][:-5]
  elif damage == 'size':
    files['train-images-idx3-ubyte'] = _idx(rng.integers(0, 256, (20, 20, 20)))
  for name, raw in files.items():
    with open(os.path.join(root, name), 'wb') as f:
      f.write(raw)
  if damage == 'gzip':
    with open(os.path.join(root, 't10k-images-idx3-ubyte'), 'rb') as f:
      raw = gzip.compress(f.read())
    os.remove(os.path.join(root, 't10k-images-idx3-ubyte'))
    with open(os.path.join(root, 't10k-images-idx3-ubyte.gz'), 'wb') as f:
      f.write(raw[:len(raw) // 2])
  return root
