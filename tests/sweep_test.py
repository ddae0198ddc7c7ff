"""The sweep runner: listing, skipping finished runs, two runs at once."""

import json
import os

import tensorflow as tf

import testutil
from zhang2017 import runner as sweep


def _write_flags(root, rows):
  os.makedirs(os.path.join(root, 'exp'))
  for r in rows:
    with open(os.path.join(root, 'exp', f'{r}.flags'), 'w') as f:
      f.write(f'# row {r}\n--model=mlp_1x512\n')


class SweepTest(tf.test.TestCase):

  def test_list_counts(self):
    for exp, n in (('table1', 19), ('fig1bc', 33), ('appendix', 6),
                   ('table2', 7), ('fig1a', 5), ('fig2b', 2)):
      p = testutil.run_module('zhang2017.sweep', f'--experiment={exp}',
                              '--list', '--results_dir=/nonexistent')
      self.assertEqual(p.returncode, 0, p.stderr)
      self.assertEqual(testutil.last_line(p.stdout), f'{n} runs')
    self.assertLen(sweep.plan('table1', seeds=3), 57)

  def test_unknown_experiment_and_row(self):
    p = testutil.run_module('zhang2017.sweep', '--experiment=nope', '--list')
    self.assertEqual(p.returncode, 2)
    self.assertIn('table1', p.stderr)
    with self.assertRaisesRegex(Exception, 'unknown rows'):
      sweep.plan('table1', rows=['nope'])

  def test_skips_finished_runs_and_runs_two_at_once(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a', 'b', 'c'])
    res = os.path.join(root, 'results')
    runs = sweep.plan('exp', flags_dir=root, results_dir=res)
    done = runs[0].run_dir
    os.makedirs(done)
    with open(os.path.join(done, 'result.json'), 'w') as f:
      json.dump({'status': 'fitted'}, f)
    # A stand-in trainer: records start/end times, writes a result.
    fake = os.path.join(root, 'fake.py')
    with open(fake, 'w') as f:
      f.write('import json, os, sys, time\n'
              'out = [a.split("=", 1)[1] for a in sys.argv '
              'if a.startswith("--output_dir=")][0]\n'
              't0 = time.time(); time.sleep(1.5)\n'
              'json.dump({"status": "fitted", "train_accuracy": 1.0, '
              '"test_accuracy": 0.1, "epochs": 1, "t": [t0, time.time()]}, '
              'open(os.path.join(out, "result.json"), "w"))\n')
    orig = sweep.command
    sweep.command = lambda run, extra=(): ['python3', fake] + orig(
        run, extra)[3:]
    try:
      logs = []
      failed = sweep.run_all(runs, parallel=2, log=logs.append)
    finally:
      sweep.command = orig
    self.assertEqual(failed, 0)
    self.assertIn('3 runs, 1 already complete, 2 to run, 2 at a time', logs[0])
    with open(os.path.join(done, 'result.json')) as f:
      self.assertNotIn('t', json.load(f))  # The finished run was not rerun.
    spans = []
    for r in runs[1:]:
      with open(os.path.join(r.run_dir, 'result.json')) as f:
        spans.append(json.load(f)['t'])
    # Both ran at the same time: each started before the other ended.
    self.assertLess(spans[0][0], spans[1][1])
    self.assertLess(spans[1][0], spans[0][1])

  def test_failed_run_is_reported(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a'])
    runs = sweep.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))
    orig = sweep.command
    sweep.command = lambda run, extra=(): ['python3', '-c', 'raise SystemExit(3)']
    try:
      logs = []
      self.assertEqual(sweep.run_all(runs, log=logs.append), 1)
    finally:
      sweep.command = orig
    self.assertIn('FAILED (exit 3', logs[-1])


if __name__ == '__main__':
  tf.test.main()
