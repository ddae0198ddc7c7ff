"""scripts/cpu_queue.sh without its hours of training: status, collect and
the refusals, on a queue folder of fake runs."""

import json
import os
import subprocess

from absl.testing import absltest

import testutil

SCRIPT = os.path.join(testutil.ROOT, 'scripts', 'cpu_queue.sh')


class CpuQueueTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.queue = self.create_tempdir().full_path
    self.results = self.create_tempdir().full_path
    runs = os.path.join(self.queue, 'runs')
    for row, done in (('inception_random', True), ('inception', False)):
      d = os.path.join(runs, 'table1', row, 'seed0')
      os.makedirs(d)
      with open(os.path.join(d, 'history.csv'), 'w') as f:
        f.write('epoch,train_loss\n1,2.3\n2,2.2\n')
      if done:
        with open(os.path.join(d, 'result.json'), 'w') as f:
          json.dump({'status': 'fitted'}, f)
      else:
        open(os.path.join(d, 'checkpoint.npz'), 'w').close()

  def run_script(self, *args, env=None):
    env = {**os.environ, **(env or {}), 'ZHANG2017_QUEUE_DIR': self.queue,
           'ZHANG2017_RESULTS_DIR': self.results,
           'ZHANG2017_DATA_DIR': self.results}  # Any folder: never read.
    return subprocess.run(['bash', SCRIPT, *args], env=env,
                          capture_output=True, text=True, timeout=60)

  def test_status_names_runs_in_progress_and_uncollected(self):
    p = self.run_script('status')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('not running', p.stdout)
    self.assertIn('in progress: table1/inception/seed0 (2 epochs)', p.stdout)
    self.assertIn('finished, not collected: table1/inception_random/seed0',
                  p.stdout)

  def test_collect_copies_finished_runs_once_and_never_overwrites(self):
    p = self.run_script('collect')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('1 runs collected', p.stdout)
    done = os.path.join(self.results, 'table1', 'inception_random', 'seed0')
    self.assertCountEqual(os.listdir(done), ['history.csv', 'result.json'])
    self.assertFalse(os.path.exists(
        os.path.join(self.results, 'table1', 'inception')))
    with open(os.path.join(done, 'result.json'), 'w') as f:
      f.write('{"status": "kept"}')
    p = self.run_script('collect')
    self.assertIn('0 runs collected', p.stdout)
    with open(os.path.join(done, 'result.json')) as f:
      self.assertEqual(json.load(f), {'status': 'kept'})
    self.assertNotIn('not collected', self.run_script('status').stdout)

  def test_start_status_stop_with_a_stand_in_queue(self):
    # The clone is of this repository's HEAD: committed code runs.
    os.environ['ZHANG2017_QUEUE_CMD'] = 'echo stand-in; sleep 300'
    try:
      p = self.run_script('start')
    finally:
      del os.environ['ZHANG2017_QUEUE_CMD']
    self.assertEqual(p.returncode, 0, p.stderr)
    with open(os.path.join(self.queue, 'queue.pid')) as f:
      pid = int(f.read())
    self.assertIn(f'(pid {pid})', p.stdout)
    self.assertIn('running', self.run_script('status').stdout.splitlines()[0])
    again = self.run_script('start')
    self.assertEqual(again.returncode, 2)
    self.assertIn('the queue is running', again.stderr)
    self.assertIn('queue stopped', self.run_script('stop').stdout)
    with self.assertRaises(ProcessLookupError):  # The whole group is gone.
      os.killpg(pid, 0)
    self.assertIn('not running', self.run_script('status').stdout)

  def test_refusals_are_one_line_and_exit_2(self):
    p = self.run_script('start', 'no-such-commit')
    self.assertEqual(p.returncode, 2)
    self.assertEqual(p.stderr.strip(),
                     f'error: no-such-commit is not a commit of '
                     f'{testutil.ROOT}')
    self.assertFalse(os.path.exists(os.path.join(self.queue, 'code')))
    # A python without TensorFlow: every run would fail on import.
    p = self.run_script('start', env={'PYTHON': 'false'})
    self.assertEqual(p.returncode, 2)
    self.assertEqual(len(p.stderr.strip().splitlines()), 1)
    self.assertIn("cannot import tensorflow; install it (pip install -e '.[tf]')",
                  p.stderr)
    self.assertFalse(os.path.exists(os.path.join(self.queue, 'code')))
    self.assertEqual(self.run_script('bogus').returncode, 2)
    self.assertIn('the queue is not running', self.run_script('stop').stdout)


if __name__ == '__main__':
  absltest.main()
