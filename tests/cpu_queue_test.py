"""scripts/cpu_queue.sh without its hours of training: status, collect,
park, `stop --after-save` and the refusals, on a queue folder of fake runs."""

import json
import os
import shutil
import subprocess
import time

from absl.testing import absltest
import numpy as np

import testutil

SCRIPT = os.path.join(testutil.ROOT, 'scripts', 'cpu_queue.sh')


def write_checkpoint(d, epochs, run_key=None):
  """A checkpoint.npz as train_lib writes it, with `epochs` in its meta."""
  os.makedirs(d, exist_ok=True)
  meta = {'run_key': run_key or {'model': 'inception_small'},
          'history': [{'epoch': e + 1} for e in range(epochs)]}
  np.savez(os.path.join(d, 'checkpoint.npz'), meta=np.array(json.dumps(meta)),
           v0=np.full(3, epochs, np.float32))
  with open(os.path.join(d, 'history.csv'), 'w') as f:
    f.write('epoch\n' + ''.join(f'{e + 1}\n' for e in range(epochs)))


def checkpoint_epochs(d):
  with np.load(os.path.join(d, 'checkpoint.npz')) as z:
    return len(json.loads(str(z['meta']))['history'])


class CpuQueueTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.queue = self.create_tempdir().full_path
    self.results = self.create_tempdir().full_path
    self.parked = os.path.join(self.create_tempdir().full_path, 'parked_runs')
    runs = self.runs = os.path.join(self.queue, 'runs')
    for row, done in (('inception_random', True), ('inception', False)):
      d = os.path.join(runs, 'table1', row, 'seed0')
      os.makedirs(d)
      with open(os.path.join(d, 'history.csv'), 'w') as f:
        f.write('epoch,train_loss\n1,2.3\n2,2.2\n')
      if done:
        with open(os.path.join(d, 'result.json'), 'w') as f:
          json.dump({'status': 'fitted'}, f)
      else:
        write_checkpoint(d, 2)

  def run_script(self, *args, env=None):
    env = {**os.environ, **(env or {}), 'ZHANG2017_QUEUE_DIR': self.queue,
           'ZHANG2017_RESULTS_DIR': self.results,
           'ZHANG2017_PARKED_DIR': self.parked,
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

  def start_stand_in(self):
    # The clone is of this repository's HEAD: committed code runs.
    return self.run_script(
        'start', env={'ZHANG2017_QUEUE_CMD': 'echo stand-in; sleep 300'})

  def test_park_then_start_on_a_new_machine_resumes_and_skips_finished(self):
    p = self.run_script('park')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('parked table1/inception/seed0 (2 epochs, 0.0 MiB)', p.stdout)
    self.assertIn('1 runs parked', p.stdout)
    parked = os.path.join(self.parked, 'table1', 'inception', 'seed0')
    self.assertCountEqual(os.listdir(parked), ['checkpoint.npz', 'history.csv'])
    self.assertIn('0 runs parked', self.run_script('park').stdout)  # Had it.
    self.assertIn('parked: table1/inception/seed0 (2 epochs)',
                  self.run_script('status').stdout)
    # A new machine: no queue folder; the finished run is in results/.
    self.run_script('collect')
    shutil.rmtree(self.queue)
    p = self.start_stand_in()
    self.assertEqual(p.returncode, 0, p.stderr)
    self.run_script('stop')
    self.assertIn('resumes table1/inception/seed0 from parked_runs/ after '
                  'epoch 2 (this machine had 0)', p.stdout)
    run = os.path.join(self.runs, 'table1', 'inception', 'seed0')
    self.assertEqual(checkpoint_epochs(run), 2)
    self.assertTrue(os.path.exists(os.path.join(  # The sweep skips it.
        self.runs, 'table1', 'inception_random', 'seed0', 'result.json')))
    # A run that went further here than its parked copy keeps its own.
    write_checkpoint(run, 5)
    p = self.start_stand_in()
    self.run_script('stop')
    self.assertNotIn('from parked_runs', p.stdout)
    self.assertEqual(checkpoint_epochs(run), 5)
    self.assertIn('parked table1/inception/seed0 (5 epochs',
                  self.run_script('park').stdout)
    self.assertEqual(checkpoint_epochs(parked), 5)
    # Once it finishes and is collected its parked copy goes.
    with open(os.path.join(run, 'result.json'), 'w') as f:
      json.dump({'status': 'fitted'}, f)
    p = self.run_script('collect')
    self.assertIn('removed parked_runs/table1/inception/seed0', p.stdout)
    self.assertFalse(os.path.exists(parked))

  def test_parked_copies_that_do_not_fit_are_left_alone(self):
    parked = os.path.join(self.parked, 'table1', 'inception', 'seed0')
    run = os.path.join(self.runs, 'table1', 'inception', 'seed0')
    write_checkpoint(parked, 2)  # As many epochs as here: nothing to do.
    p = self.start_stand_in()
    self.run_script('stop')
    self.assertNotIn('from parked_runs', p.stdout)
    write_checkpoint(parked, 9, run_key={'model': 'alexnet_small'})
    p = self.start_stand_in()
    self.run_script('stop')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('warning: parked_runs/table1/inception/seed0 was trained '
                  'with other flags', p.stderr)
    self.assertEqual(checkpoint_epochs(run), 2)
    self.assertIn('parked table1/inception/seed0 (2 epochs',  # Replaced.
                  self.run_script('park').stdout)
    self.assertEqual(checkpoint_epochs(parked), 2)
    with open(os.path.join(parked, 'checkpoint.npz'), 'wb') as f:
      f.write(b'damaged')
    shutil.rmtree(run)
    p = self.start_stand_in()  # Warns and goes on.
    self.run_script('stop')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertIn('warning: cannot read', p.stderr)
    self.assertIn('queue started', p.stdout)
    self.assertFalse(os.path.exists(run))

  def test_the_queue_skips_the_kernel_run_finished_in_results(self):
    # The real queue, with a python that runs `-c` and logs the rest.
    calls = os.path.join(self.queue, 'calls.txt')
    stub = os.path.join(self.results, 'python')
    with open(stub, 'w') as f:
      f.write(f'#!/bin/bash\n[[ $1 == -c ]] && exec python3 "$@"\n'
              f'echo "$*" >>{calls}\n')
    os.chmod(stub, 0o755)
    kernel = os.path.join(self.results, 'theory',
                          'kernel-cifar10-gaussian-rf32000-median')
    os.makedirs(kernel)
    with open(os.path.join(kernel, 'result.json'), 'w') as f:
      json.dump({'status': 'interpolated'}, f)
    p = self.run_script('start', env={'PYTHON': stub,
                                      'ZHANG2017_QUEUE_CMD': 'queue'})
    self.assertEqual(p.returncode, 0, p.stderr)
    log = os.path.join(self.queue, 'queue.log')
    for _ in range(100):
      if os.path.exists(log) and 'queue finished' in open(log).read():
        break
      time.sleep(0.1)
    self.assertIn('queue finished', open(log).read())
    with open(calls) as f:
      lines = f.read().splitlines()
    self.assertLen(lines, 3)  # The three sweeps, no kernel run.
    self.assertTrue(all('-m zhang2017.sweep' in l for l in lines), lines)
    self.assertIn('--rows=inception_random,inception,alexnet_random', lines[0])
    shutil.rmtree(kernel)
    os.remove(os.path.join(self.runs, os.path.relpath(kernel, self.results),
                           'result.json'))
    self.run_script('start', env={'PYTHON': stub,
                                  'ZHANG2017_QUEUE_CMD': 'queue'})
    for _ in range(100):
      if open(log).read().count('queue finished') == 2:
        break
      time.sleep(0.1)
    with open(calls) as f:
      self.assertIn('-m zhang2017.kernel', f.read().splitlines()[4])

  def test_start_status_stop_with_a_stand_in_queue(self):
    p = self.start_stand_in()
    self.assertEqual(p.returncode, 0, p.stderr)
    with open(os.path.join(self.queue, 'queue.pid')) as f:
      pid = int(f.read())
    self.assertIn(f'(pid {pid})', p.stdout)
    self.assertIn('running', self.run_script('status').stdout.splitlines()[0])
    for command in ('start', 'park'):
      again = self.run_script(command)
      self.assertEqual(again.returncode, 2)
      self.assertIn('the queue is running', again.stderr)
    self.assertIn('queue stopped', self.run_script('stop').stdout)
    with self.assertRaises(ProcessLookupError):  # The whole group is gone.
      os.killpg(pid, 0)
    self.assertIn('not running', self.run_script('status').stdout)

  def test_stop_after_save_waits_for_the_next_save_at_most_minutes(self):
    ckpt = os.path.join(self.runs, 'table1', 'inception', 'seed0',
                        'checkpoint.npz')
    # A stand-in run that saves its checkpoint (whole, renamed) every 2 s.
    p = self.run_script('start', env={'ZHANG2017_QUEUE_CMD': (
        f'while :; do sleep 2; cp {ckpt} {ckpt}.part; mv {ckpt}.part {ckpt};'
        ' done')})
    self.assertEqual(p.returncode, 0, p.stderr)
    with open(os.path.join(self.queue, 'queue.pid')) as f:
      pid = int(f.read())
    start = time.time()
    p = self.run_script('stop', '--after-save', '1')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertLess(time.time() - start, 30)  # Not the minute: the save.
    self.assertIn(f'saved: {ckpt}', p.stdout)
    self.assertIn('queue stopped', p.stdout)
    with self.assertRaises(ProcessLookupError):
      os.killpg(pid, 0)
    self.assertEqual(checkpoint_epochs(os.path.dirname(ckpt)), 2)  # Whole.
    # No save comes: it stops at the limit (0.05 min: 3 s).
    self.assertEqual(self.start_stand_in().returncode, 0)
    start = time.time()
    p = self.run_script('stop', '--after-save', '0.05')
    self.assertGreaterEqual(time.time() - start, 3)
    self.assertIn('no save within 0.05 min; stopping now', p.stdout)
    self.assertIn('queue stopped', p.stdout)
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
    for args in (('stop', 'now'), ('stop', '--after-save', 'soon'),
                 ('stop', '--after-save', '5', 'junk')):
      p = self.run_script(*args)
      self.assertEqual(p.returncode, 2)
      self.assertEqual(len(p.stderr.strip().splitlines()), 1)
      self.assertIn(f"not '{args[-1]}'", p.stderr)
    self.assertIn('the queue is not running', self.run_script('stop').stdout)

  def test_start_refuses_a_commit_on_no_branch(self):
    # A repository of its own, so that the dangling commit is not ours.
    repo = self.create_tempdir().full_path
    os.makedirs(os.path.join(repo, 'scripts'))
    shutil.copy(SCRIPT, os.path.join(repo, 'scripts'))
    git = lambda *a: subprocess.run(
        ['git', '-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', *a],
        check=True, capture_output=True, text=True).stdout.strip()
    git('init', '-q', '-b', 'main')
    git('add', '.')
    git('commit', '-q', '-m', 'one')
    start = lambda commit: subprocess.run(
        ['bash', os.path.join(repo, 'scripts', 'cpu_queue.sh'), 'start',
         commit], capture_output=True, text=True, timeout=60,
        env={**os.environ, 'ZHANG2017_QUEUE_DIR': self.queue,
             'ZHANG2017_DATA_DIR': os.path.join(repo, 'no-data')})
    # The queue's clone is made, then the missing data stops the start.
    p = start('main')
    self.assertEqual(p.returncode, 2)
    self.assertIn('error: no data folder', p.stderr)
    # A commit made after that clone and on no branch: fetching the
    # branches does not bring it.
    dangling = git('commit-tree', 'HEAD^{tree}', '-p', 'HEAD', '-m', 'two')
    p = start(dangling)
    self.assertEqual(p.returncode, 2)
    self.assertEqual(p.stderr.strip(), f'error: {dangling} is on no branch '
                     f'of {repo}; put it on a branch first')
    self.assertFalse(os.path.exists(os.path.join(self.queue, 'queue.pid')))


if __name__ == '__main__':
  absltest.main()
