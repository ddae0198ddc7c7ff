"""The GPU session's single call, rehearsed on CPU as two leases of tiny
runs: the cache round trip (the second compiles nothing) and the skip (it
starts no run the first finished)."""

import os
import re
import subprocess
import sys
import tarfile
import unittest

from absl.testing import absltest

import testutil

DATA = testutil.data_dir()
COMMIT = 'a' * 40


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found')
class DeviceSessionTest(absltest.TestCase):

  def _call(self, d, i, rows):
    """One call of device_session.sh, then device_carry.py in: session.txt."""
    out = os.path.join(d, f'out{i}')
    env = {**os.environ, 'REHEARSAL': '1', 'ROWS': rows, 'OUT': out,
           'PROBE_CASES': 'step-autotune0', 'BUDGET_S': '400',
           'WORK_DIR': os.path.join(d, f'work{i}'),
           # One path for both: it enters the compilation cache's keys.
           'CACHE_DIR': os.path.join(d, 'live-cache'),
           'CARRIED': os.path.join(d, 'carry'),
           'SEED_RESULTS': os.path.join(d, 'results'),
           'ZHANG2017_GIT_COMMIT': COMMIT, 'ZHANG2017_DATA_DIR': DATA,
           'KERAS_BACKEND': 'jax'}  # conftest sets TensorFlow for the suite.
    p = subprocess.run(
        ['bash', os.path.join(testutil.ROOT, 'benchmarks',
                              'device_session.sh')],
        env=env, capture_output=True, text=True, timeout=600)
    self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-2000:])
    # Only plain files directly in $OUT come back from the device.
    names = os.listdir(out)
    self.assertLessEqual(len(names), 8)
    self.assertTrue(all(os.path.isfile(os.path.join(out, n)) for n in names))
    p = subprocess.run(
        [sys.executable, os.path.join(testutil.ROOT, 'benchmarks',
                                      'device_carry.py'), 'in',
         f'--from={out}', f'--results_dir={os.path.join(d, "results")}',
         f'--carry_dir={os.path.join(d, "carry")}',
         f'--held_dir={os.path.join(d, "held")}'],
        env={**env, 'PYTHONPATH': testutil.ROOT}, capture_output=True,
        text=True, timeout=120)
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    with open(os.path.join(out, 'session.txt')) as f:
      return f.read()

  def test_second_lease_compiles_nothing_and_redoes_nothing(self):
    d = self.create_tempdir().full_path
    first = self._call(d, 1, 'alexnet')
    self.assertIn(f'device session: commit {COMMIT}', first)
    self.assertIn('chosen form: step-autotune0 (form step, '
                  '--steps_per_call=1)', first)
    self.assertIn('\nXLA_FLAGS=--xla_gpu_autotune_level=0\n', first)
    self.assertRegex(first, r'\ncompiles: \d+ programs loaded from the '
                     r'persistent cache, [1-9]\d* compiled')
    self.assertIn('start table1/alexnet seed 0', first)
    self.assertTrue(os.path.exists(os.path.join(d, 'carry', 'ledger.json')))
    self.assertNotEmpty(os.listdir(os.path.join(d, 'carry', 'jax-cache')))

    second = self._call(d, 2, 'alexnet,alexnet_random')
    self.assertIn('the carried choice', second)
    self.assertIn('\nXLA_FLAGS=--xla_gpu_autotune_level=0\n', second)
    self.assertIn('2 runs, 1 already complete, 1 to run', second)
    self.assertNotIn('start table1/alexnet seed', second)
    self.assertIn('start table1/alexnet_random seed 0', second)
    hits = re.search(r'\ncompiles: (\d+) programs loaded from the persistent '
                     r'cache, (\d+) compiled', second)
    self.assertGreater(int(hits.group(1)), 0)
    self.assertEqual(hits.group(2), '0')
    self.assertIn('train hit, eval hit', second)
    with tarfile.open(os.path.join(d, 'out2', 'results-0.tgz')) as tar:
      self.assertCountEqual(tar.getnames(), [
          f'table1/alexnet_random/seed0/{f}'
          for f in ('result.json', 'history.csv', 'examples.npz')])
    self.assertTrue(os.path.exists(os.path.join(
        d, 'results', 'table1', 'alexnet_random', 'seed0', 'result.json')))


if __name__ == '__main__':
  absltest.main()
