"""Shared helpers for the test suites: data location and subprocess runs."""

import os
import subprocess
import sys

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
