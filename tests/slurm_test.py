"""The Slurm launcher: its flags without a cluster, then a tiny sweep through
the real sbatch of a one-node Slurm (scripts/slurm_local.sh).

The Slurm test skips, with the reason, where no Slurm runs and none can be
started (not root, slurm-wlm not installed); with CI=true it fails instead.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

from absl.testing import absltest

import testutil

DATA = testutil.data_dir()
SCRIPT = os.path.join(testutil.ROOT, 'scripts', 'slurm_local.sh')
SMALL = '--dataset=cifar10\n--model=mlp_1x512\n--train_size=1000\n'
# Random labels, a small learning rate: not fitted before the last epoch.
LONG_EPOCHS = 20


def _sweep(*args, env=None):
  return testutil.run_module('zhang2017.sweep', *args, env=env)


def _write_flags(root, rows):
  os.makedirs(os.path.join(root, 'flags', 'exp'))
  for row, text in rows.items():
    with open(os.path.join(root, 'flags', 'exp', f'{row}.flags'), 'w') as f:
      f.write(SMALL + text)


def _fake_bin(root, squeue_out=''):
  """A PATH folder with a stand-in sbatch, and a squeue printing this."""
  path = os.path.join(root, 'bin')
  os.makedirs(path)
  for name, text in (('sbatch', 'exit 1'),
                     ('squeue', f'printf "{squeue_out}"')):
    with open(os.path.join(path, name), 'w') as f:
      f.write(f'#!/bin/sh\n{text}\n')
    os.chmod(os.path.join(path, name), 0o755)
  return path


class SlurmFlagsTest(absltest.TestCase):
  """Bad combinations: one line, exit 2, nothing written."""

  def assert_refused(self, p, fragment, results_dir):
    self.assertEqual(p.returncode, 2, p.stderr)
    self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
    self.assertIn(fragment, p.stderr)
    self.assertFalse(os.path.exists(results_dir))

  def test_help_documents_the_launcher(self):
    p = _sweep('--help')  # absl's --help exits with status 1.
    for flag in ('--launcher', '--wait', '--slurm_partition', '--slurm_time',
                 '--slurm_gpus', '--slurm_cpus', '--slurm_mem',
                 '--slurm_max_running', '--slurm_sbatch'):
      self.assertIn(flag, p.stdout)
    self.assertIn('storage every node shares', ' '.join(p.stdout.split()))

  def test_bad_combinations(self):
    res = os.path.join(self.create_tempdir().full_path, 'r')
    base = ['--experiment=table1', f'--results_dir={res}']
    empty = self.create_tempdir().full_path  # A PATH without sbatch.
    self.assert_refused(_sweep(*base, '--launcher=slurm', env={'PATH': empty}),
                        "needs Slurm's sbatch and squeue on PATH", res)
    self.assert_refused(_sweep(*base, '--launcher=slurm', '--parallel=2'),
                        '--parallel: only for --launcher=local', res)
    self.assert_refused(_sweep(*base, '--wait', '--slurm_gpus=1'),
                        '--wait, --slurm_gpus: only for --launcher=slurm', res)
    self.assert_refused(_sweep(*base, '--launcher=slurm',
                               '--slurm_sbatch=--account=x'),
                        'sbatch option names without dashes', res)
    self.assert_refused(_sweep(*base, '--launcher=slurm', '--slurm_mem=lots'),
                        '--slurm_mem takes a number', res)

  def test_runs_still_queued_are_not_submitted_again(self):
    root = self.create_tempdir().full_path
    _write_flags(root, {'a': ''})
    run_dir = os.path.join(root, 'r', 'exp', 'a', 'seed0')
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'slurm_job'), 'w') as f:
      f.write('7_0\n')
    path = _fake_bin(root, '7_0 RUNNING\\n8_1 PENDING\\n')
    p = _sweep('--experiment=exp', f'--flags_dir={root}/flags',
               f'--results_dir={root}/r', '--launcher=slurm',
               env={'PATH': path + os.pathsep + os.environ['PATH']})
    self.assertEqual(p.returncode, 2, p.stderr)
    self.assertIn('still queued or running as Slurm tasks 7_0', p.stderr)
    self.assertEqual(os.listdir(run_dir), ['slurm_job'])


def _slurm_unavailable():
  """Why no Slurm can run the test here, or None once one is up."""
  try:
    import submitit  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return 'submitit is not installed: pip install -e ".[test]"'
  if os.geteuid() != 0:
    return 'starting Slurm (scripts/slurm_local.sh) needs root'
  if shutil.which('slurmctld') is None:
    return 'slurm-wlm is not installed: scripts/slurm_local.sh install'
  p = subprocess.run(['bash', SCRIPT, 'start'], capture_output=True,
                     text=True, check=False)
  if p.returncode:
    return f'scripts/slurm_local.sh start failed: {p.stderr.strip()}'
  return None


def _until(predicate, what, timeout=300):
  t0 = time.time()
  while not predicate():
    if time.time() - t0 > timeout:
      raise AssertionError(f'no {what} after {timeout} s')
    time.sleep(0.2)


def _read(path):
  if not os.path.exists(path):
    return ''
  with open(path) as f:
    return f.read()


def _job_id(output):
  return re.search(r'submitted Slurm job (\d+)', output).group(1)


def _squeue(job):
  return subprocess.run(['squeue', '-r', '-j', job, '-o', '%i %j %T %M %R'],
                        capture_output=True, text=True, check=False).stdout


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found: set ZHANG2017_DATA_DIR')
class SlurmSweepTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    reason = _slurm_unavailable()
    if reason and os.environ.get('CI') == 'true':
      self.fail(f'CI=true, and no Slurm to test against: {reason}')
    if reason:
      self.skipTest(reason)
    self.root = self.create_tempdir().full_path
    self.res = os.path.join(self.root, 'results')
    self.env = {'ZHANG2017_DATA_DIR': DATA, 'KERAS_BACKEND': 'tensorflow'}
    _write_flags(self.root, {
        'a': '--epochs=2\n',
        'long': f'--epochs={LONG_EPOCHS}\n--labels=random\n'
                '--learning_rate=0.0001\n'})

  def sweep(self, *args):
    return [sys.executable, '-m', 'zhang2017.sweep', '--experiment=exp',
            f'--flags_dir={self.root}/flags', f'--results_dir={self.res}',
            '--launcher=slurm', *args]

  def run_dir(self, row):
    return os.path.join(self.res, 'exp', row, 'seed0')

  def test_array_requeue_cancel_and_resubmit(self):
    env = {**os.environ, 'PYTHONPATH': testutil.ROOT,
           'TF_CPP_MIN_LOG_LEVEL': '3', **self.env}
    sweep = self.sweep('--rows=a,long', '--slurm_time=10',
                       '--slurm_max_running=2', '--slurm_sbatch=comment=z17')
    # Submitted without --wait, the command returns once the array is in.
    p = subprocess.run(sweep, capture_output=True, text=True, env=env)
    print(p.stdout)
    self.assertEqual(p.returncode, 0, p.stderr)
    job = _job_id(p.stdout)
    self.assertIn(f'  {job}_0 exp/a seed 0\n  {job}_1 exp/long seed 0\n',
                  p.stdout)
    task = f'{job}_1'  # The long run's.
    _until(lambda: f'{job}_0 ' in _squeue(job) and f'{task} ' in
           _squeue(job), 'both array tasks in squeue')
    print(f'squeue -r -j {job}:\n{_squeue(job)}', flush=True)
    history = os.path.join(self.run_dir('long'), 'history.csv')
    train_log = os.path.join(self.run_dir('long'), 'train.log')
    epochs = lambda: max(len(_read(history).splitlines()) - 1, 0)
    _until(lambda: epochs() >= 2, '2 epochs of the long run')
    # Slurm's warning of a time limit or preemption: submitit requeues the
    # task, which resumes by itself.
    subprocess.run(['scancel', '--signal=USR2', task], check=True)
    _until(lambda: 'resuming' in _read(train_log), 'resumption')
    resumed_at = epochs()
    # Two epochs: history.csv runs ahead of the checkpoint, and a sitting
    # cancelled before its first checkpoint leaves no trace (a flake in CI).
    _until(lambda: epochs() > resumed_at + 1, 'a checkpoint after the requeue')
    print(f'requeued and resumed; squeue -r -j {job}:\n{_squeue(job)}')
    # Cancelled, the task is gone for good; the short run finishes.
    subprocess.run(['scancel', task], check=True)
    _until(lambda: not _squeue(job).count(f'{job}_'), 'the end of the array')
    cut_at = epochs()
    self.assertLess(cut_at, LONG_EPOCHS)
    self.assertFalse(os.path.exists(os.path.join(self.run_dir('long'),
                                                 'result.json')))
    with open(os.path.join(self.run_dir('a'), 'result.json')) as f:
      self.assertEqual(json.load(f)['epochs'], 2)
    script = _read(os.path.join(self.res, '.submitit', job,
                                f'{job}_submission.sh'))
    for line in ('--array=0-1%2', '--time=10', '--comment=z17',
                 '--signal=USR2@90', '--cpus-per-task=1'):
      self.assertIn(f'#SBATCH {line}\n', script)

    # The same command again, waiting: the unfinished run resumes.
    p = subprocess.run(sweep + ['--wait'], capture_output=True, text=True,
                       env=env, timeout=300)
    print(p.stdout)
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('2 runs, 1 already complete, 1 to submit', p.stdout)
    self.assertIn('all 1 runs finished', p.stdout)
    with open(os.path.join(self.run_dir('long'), 'result.json')) as f:
      result = json.load(f)
    self.assertEqual(result['epochs'], LONG_EPOCHS)
    self.assertEqual(result['provenance']['sittings'], 3)
    # Each sitting went on from the last: requeued after epoch >= 2, then
    # resubmitted after the epochs the cancelled one had written (its last
    # may be in history.csv and not yet in the checkpoint).
    first, second = map(int, re.findall(
        f'resuming {re.escape(self.run_dir("long"))} after epoch (\\d+)',
        _read(train_log)))
    self.assertLessEqual(2, first)
    self.assertLess(first, second)
    self.assertIn(cut_at - second, (0, 1))
    # And again: nothing left to submit.
    p = subprocess.run(sweep, capture_output=True, text=True, env=env)
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('2 runs, 2 already complete, 0 to submit', p.stdout)
    self.assertNotIn('submitted', p.stdout)


if __name__ == '__main__':
  absltest.main()
