"""The GPU session script, rehearsed on CPU with two of its runs."""

import glob
import json
import os
import subprocess
import tarfile
import unittest

from absl.testing import absltest

import testutil

DATA = testutil.data_dir()


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found')
class DeviceSessionTest(absltest.TestCase):

  def test_rehearsal_packs_results_the_report_reads(self):
    out = self.create_tempdir().full_path
    cache = self.create_tempdir().full_path
    runs = self.create_tempdir().full_path
    env = {**os.environ, 'REHEARSAL': '1', 'SKIP_BENCH': '1', 'OUT': out,
           'ROWS': 'alexnet,alexnet_random', 'BUDGET_S': '400',
           'CACHE_DIR': cache, 'RESULTS_DIR': runs,
           'ZHANG2017_DATA_DIR': DATA,
           # The session's backend (conftest sets TensorFlow for the suite).
           'KERAS_BACKEND': 'jax', 'JAX_LOG_COMPILES': '1'}
    p = subprocess.run(
        ['bash', os.path.join(testutil.ROOT, 'benchmarks',
                              'device_session.sh')],
        env=env, capture_output=True, text=True, timeout=600)
    self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
    with open(os.path.join(out, 'session.txt')) as f:
      session = f.read()
    self.assertIn('packed 2 finished runs of 2 into results-0.tgz', session)
    # The two runs share one program: the second waited for the first's
    # first epoch, then read both programs from the persistent cache.
    self.assertNotEmpty(os.listdir(cache))
    # Only files directly in $OUT (it comes back from the GPU machine).
    self.assertCountEqual(os.listdir(out),
                          ['session.txt', 'results-0.tgz', 'logs.tgz'])
    with open(os.path.join(runs, 'table1', 'alexnet_random', 'seed0',
                           'train.log')) as f:
      log = f.read()
    for name in ('zhang2017_train', 'zhang2017_eval'):
      self.assertIn(f"Persistent compilation cache hit for 'jit_{name}'", log)
    scratch = self.create_tempdir().full_path
    with tarfile.open(os.path.join(out, 'results-0.tgz')) as tar:
      self.assertCountEqual(tar.getnames(), [
          f'table1/{r}/seed0/{f}' for r in ('alexnet', 'alexnet_random')
          for f in ('result.json', 'history.csv', 'examples.npz')])
      tar.extractall(scratch)
    for path in glob.glob(os.path.join(scratch, '*', '*', '*',
                                       'result.json')):
      with open(path) as f:
        r = json.load(f)
      self.assertEqual(r['train_size'], 256)  # Tiny: never a paper row.
      self.assertEqual(r['provenance']['compiled_programs'],
                       {'train': 1, 'eval': 1})
    p = testutil.run_module('zhang2017.report', f'--results_dir={scratch}')
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    with open(os.path.join(scratch, 'README.md')) as f:
      self.assertIn('Alexnet, fitting random labels', f.read())


if __name__ == '__main__':
  absltest.main()
