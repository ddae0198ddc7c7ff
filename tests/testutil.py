"""Shared helpers for the test suites: data location and subprocess runs."""

import json
import os
import socket
import subprocess
import sys
import tempfile

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
