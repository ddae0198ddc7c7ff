"""The numerics pin: short real runs per backend, compared with stored losses.

Any change to the training step, the data order, the initialization, the
preprocessing or the loss moves these losses far beyond the tolerance; the
float noise between machines and thread counts does not (measured: see
TOLERANCE). A deliberate change of the numbers updates the pin in the same
commit, saying why:

  python tests/numerics_pin_test.py --update
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

import testutil

DATA = testutil.data_dir()
PIN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   'numerics_pin.json')
# Measured at 989fa37 on this 2-core machine, two cores against one
# (`taskset -c 0`, `--print 0` below): the largest relative gap of any pinned
# loss was 1.1e-8 (TensorFlow) and 3.0e-9 (JAX); across machines the full-size
# first epoch differed by 4e-5 (390 steps, README "Determinism"). A learning
# rate 1% higher in the step moves them by more than 1e-3 (see the test).
TOLERANCE = 1e-4
RUNS = {
    # Random labels: initialization, data order, corruption, SGD, loss.
    'mlp_1x512_random': ['--model=mlp_1x512', '--labels=random',
                         '--train_size=1000', '--test_size=500',
                         '--epochs=3'],
    # Convolutions, LRN, the crop and per-image standardization, dropout.
    'alexnet_small': ['--model=alexnet_small', '--train_size=256',
                      '--test_size=256', '--epochs=2', '--dropout=0.5'],
}
COLUMNS = ('train_loss', 'train_eval_loss', 'test_loss')
BACKENDS = ('tensorflow', 'jax')


def run(backend, name, out_dir, cores=None):
  """One pinned run through the binary: {column: [value per epoch]}."""
  cmd = [sys.executable, '-m', 'zhang2017.train', '--dataset=cifar10',
         *RUNS[name], '--seed=0', f'--output_dir={out_dir}']
  if cores:
    cmd = ['taskset', '-c', cores, *cmd]
  env = {**os.environ, 'PYTHONPATH': testutil.ROOT, 'KERAS_BACKEND': backend,
         'ZHANG2017_DATA_DIR': DATA, 'TF_CPP_MIN_LOG_LEVEL': '3'}
  p = subprocess.run(cmd, cwd=testutil.ROOT, env=env, capture_output=True,
                     text=True, timeout=600)
  if p.returncode:
    raise RuntimeError(f'{name} on {backend} failed:\n{p.stderr[-2000:]}')
  with open(os.path.join(out_dir, 'history.csv')) as f:
    rows = list(csv.DictReader(f))
  return {c: [float(r[c]) for r in rows] for c in COLUMNS}


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found: set ZHANG2017_DATA_DIR')
class NumericsPinTest(parameterized.TestCase):

  @parameterized.parameters(*BACKENDS)
  def test_losses_match_the_pin(self, backend):
    with open(PIN) as f:
      pin = json.load(f)[backend]
    for name in RUNS:
      got = run(backend, name, self.create_tempdir().full_path)
      for c in COLUMNS:
        np.testing.assert_allclose(
            got[c], pin[name][c], rtol=TOLERANCE,
            err_msg=f'{backend} {name} {c}: the training numerics changed; '
            'if that is deliberate, run `python tests/numerics_pin_test.py '
            '--update` and say why in the commit')


def update(cores=None):
  """Rewrites the pin from fresh runs (both backends, every run)."""
  pin = {}
  with tempfile.TemporaryDirectory() as tmp:
    for backend in BACKENDS:
      pin[backend] = {n: run(backend, n, os.path.join(tmp, backend, n), cores)
                      for n in RUNS}
  return pin


if __name__ == '__main__':
  if sys.argv[1:2] == ['--update']:
    with open(PIN, 'w') as f:
      json.dump(update(), f, indent=1)
      f.write('\n')
    print(f'wrote {PIN}')
  elif sys.argv[1:2] == ['--print']:  # --print [CORES]: for measuring noise.
    print(json.dumps(update(sys.argv[2] if len(sys.argv) > 2 else None)))
  else:
    absltest.main()
