"""The sweep library: listing, the conv plan, skipping finished runs, runs at
once, compile-once scheduling, the time limit and packing."""

import json
import os
import tarfile
import time

from absl.testing import absltest

import testutil
from zhang2017.sweeps import sweep_lib


def _write_flags(root, rows, flags_by_row=None):
  os.makedirs(os.path.join(root, 'exp'))
  for r in rows:
    with open(os.path.join(root, 'exp', f'{r}.flags'), 'w') as f:
      f.write(f'# row {r}\n--model=mlp_1x512\n'
              + (flags_by_row or {}).get(r, ''))


# A stand-in trainer: history.csv after `compile_s` (its "first epoch"),
# result.json after `total_s`; records its start and end times.
FAKE = ('import json, os, sys, time\n'
        'out = [a.split("=", 1)[1] for a in sys.argv '
        'if a.startswith("--output_dir=")][0]\n'
        't0 = time.time(); time.sleep({compile_s})\n'
        'open(os.path.join(out, "history.csv"), "w").write("epoch\\n1\\n")\n'
        'time.sleep({total_s} - {compile_s})\n'
        'json.dump({{"status": "fitted", "train_accuracy": 1.0, '
        '"test_accuracy": 0.1, "epochs": 1, "t": [t0, time.time()]}}, '
        'open(os.path.join(out, "result.json"), "w"))\n')


class _Fake:
  """Replaces the training command of `sweep_lib` while in use."""

  def __init__(self, root, compile_s=0.2, total_s=1.5):
    self.path = os.path.join(root, 'fake.py')
    with open(self.path, 'w') as f:
      f.write(FAKE.format(compile_s=compile_s, total_s=total_s))

  def __enter__(self):
    self.orig = sweep_lib.command
    sweep_lib.command = lambda run, extra=(): ['python3', self.path] + self.orig(
        run, extra)[3:]

  def __exit__(self, *exc):
    sweep_lib.command = self.orig


def _span(run):
  with open(os.path.join(run.run_dir, 'result.json')) as f:
    return json.load(f)['t']


class SweepTest(absltest.TestCase):

  def test_list_counts(self):
    for exp, n in (('table1', 19), ('fig1bc', 33), ('appendix', 6),
                   ('table2', 7), ('fig1a', 5), ('fig2b', 2)):
      p = testutil.run_module('zhang2017.sweep', f'--experiment={exp}',
                              '--list', '--results_dir=/nonexistent')
      self.assertEqual(p.returncode, 0, p.stderr)
      self.assertEqual(testutil.last_line(p.stdout), f'{n} runs')
    self.assertLen(sweep_lib.plan('table1', seeds=3), 57)

  def test_conv_plan_is_every_conv_run_once(self):
    p = testutil.run_module('zhang2017.sweep', '--experiment=conv', '--list',
                            '--results_dir=/nonexistent')
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertEqual(testutil.last_line(p.stdout), '38 runs')
    runs = sweep_lib.plan('conv')
    named = {f'{r.experiment}/{r.row}' for r in runs}
    named |= {a for r in runs for a in r.also}
    # 13 Table 1 rows, 5 Fig. 1a curves, 2 Fig. 2b curves, 22 Fig. 1b/1c
    # points, 4 appendix rows: 46 names, of which 8 are the same run twice.
    self.assertLen(named, 46)
    self.assertLen(runs, 38)
    by_name = {f'{r.experiment}/{r.row}': r for r in runs}
    self.assertCountEqual(by_name['table1/inception'].also, [
        'fig1a/true_labels', 'fig2b/inception', 'fig1bc/inception_small_p00'])
    self.assertCountEqual(by_name['table1/alexnet_random'].also,
                          ['fig1bc/alexnet_small_p10'])
    # Grouped by compiled program, the most used first: small Inception's
    # plain program serves 13 runs, AlexNet's 11.
    keys = [sweep_lib.program_key(r.flagfile) for r in runs]
    self.assertLen(set(keys[:13]), 1)
    self.assertLen(set(keys[13:24]), 1)
    self.assertEqual(runs[0].row, 'inception')
    self.assertEqual(runs[13].row, 'alexnet')
    self.assertEqual(runs[-1].row, 'inception_aug_random')  # The longest.

  def test_program_key_ignores_labels_and_seed_only(self):
    ff = lambda e, r: os.path.join(testutil.ROOT, 'flags', e, f'{r}.flags')
    key = sweep_lib.program_key
    self.assertEqual(key(ff('table1', 'inception')),
                     key(ff('fig1bc', 'inception_small_p05')))
    self.assertEqual(key(ff('table1', 'inception')),
                     key(ff('fig1a', 'shuffled_pixels')))
    self.assertNotEqual(key(ff('table1', 'inception')),
                        key(ff('fig1a', 'gaussian')))  # float images
    self.assertNotEqual(key(ff('table1', 'inception')),
                        key(ff('table1', 'inception_wd')))

  def test_unknown_experiment_and_row(self):
    p = testutil.run_module('zhang2017.sweep', '--experiment=nope', '--list')
    self.assertEqual(p.returncode, 2)
    self.assertIn('table1', p.stderr)
    with self.assertRaisesRegex(Exception, 'unknown rows'):
      sweep_lib.plan('table1', rows=['nope'])

  def test_skips_finished_runs_and_runs_two_at_once(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a', 'b', 'c'])
    res = os.path.join(root, 'results')
    runs = sweep_lib.plan('exp', flags_dir=root, results_dir=res)
    done = runs[0].run_dir
    os.makedirs(done)
    with open(os.path.join(done, 'result.json'), 'w') as f:
      json.dump({'status': 'fitted'}, f)
    logs = []
    with _Fake(root):
      failed, cut = sweep_lib.run_all(runs, parallel=2, log=logs.append)
    self.assertEqual((failed, cut), (0, 0))
    self.assertIn('3 runs, 1 already complete, 2 to run, 2 at a time', logs[0])
    with open(os.path.join(done, 'result.json')) as f:
      self.assertNotIn('t', json.load(f))  # The finished run was not rerun.
    spans = [_span(r) for r in runs[1:]]
    # Both ran at the same time: each started before the other ended.
    self.assertLess(spans[0][0], spans[1][1])
    self.assertLess(spans[1][0], spans[0][1])

  def test_failed_run_is_reported(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a'])
    runs = sweep_lib.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))
    orig = sweep_lib.command
    sweep_lib.command = lambda run, extra=(): ['python3', '-c', 'raise SystemExit(3)']
    try:
      logs = []
      self.assertEqual(sweep_lib.run_all(runs, log=logs.append), (1, 0))
    finally:
      sweep_lib.command = orig
    self.assertIn('FAILED (exit 3', logs[-1])


  def test_same_program_waits_for_the_first_compile(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a', 'b', 'c'], {'c': '--weight_decay=0.1\n'})
    runs = sweep_lib.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))
    with _Fake(root, compile_s=1.0, total_s=2.0):
      sweep_lib.run_all(runs, parallel=3, log=lambda s: None)
    a, b, c = (_span(r) for r in runs)
    # b (same program as a) starts after a's first epoch; c does not wait.
    self.assertGreater(b[0], a[0] + 0.9)
    self.assertLess(c[0], a[0] + 0.9)

  def test_at_most_max_compiling_new_programs_at_once(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a', 'b', 'c'], {'b': '--weight_decay=0.1\n',
                                         'c': '--weight_decay=0.2\n'})
    runs = sweep_lib.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))
    with _Fake(root, compile_s=1.0, total_s=1.5):
      sweep_lib.run_all(runs, parallel=3, max_compiling=2, log=lambda s: None)
    a, b, c = (_span(r) for r in runs)
    self.assertLess(b[0], a[0] + 0.9)  # Two new programs at once...
    self.assertGreater(c[0], a[0] + 0.9)  # ...the third waits for one.

  def test_time_limit_kills_and_leaves_no_result(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['slow', 'never'])
    runs = sweep_lib.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))
    logs = []
    t0 = time.time()
    with _Fake(root, compile_s=0.1, total_s=60):
      failed, cut = sweep_lib.run_all(runs, parallel=1, log=logs.append,
                                  time_limit=2)
    self.assertLess(time.time() - t0, 20)
    self.assertEqual((failed, cut), (0, 1))
    self.assertFalse(os.path.exists(os.path.join(runs[0].run_dir,
                                                 'result.json')))
    self.assertFalse(os.path.exists(runs[1].run_dir))  # Never started.
    self.assertIn('1 cut, 1 not started', logs[-1])

  def test_interrupted_sweep_stops_its_runs(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a'])
    runs = sweep_lib.plan('exp', flags_dir=root,
                      results_dir=os.path.join(root, 'r'))

    def log(line):  # Ctrl-C just after the run started.
      if line.startswith('start '):
        raise KeyboardInterrupt

    with _Fake(root, compile_s=0.1, total_s=1.0):
      with self.assertRaises(KeyboardInterrupt):
        sweep_lib.run_all(runs, log=log)
    time.sleep(2)  # Longer than the run would take.
    self.assertFalse(os.path.exists(os.path.join(runs[0].run_dir,
                                                 'result.json')))

  def test_pack_finished_runs_in_few_bounded_archives(self):
    root = self.create_tempdir().full_path
    res = os.path.join(root, 'r')
    _write_flags(root, ['a', 'b', 'c', 'd'])
    runs = sweep_lib.plan('exp', flags_dir=root, results_dir=res)
    for r in runs[:3]:
      os.makedirs(r.run_dir)
      with open(os.path.join(r.run_dir, 'history.csv'), 'w') as f:
        f.write('x' * 3000)
      with open(os.path.join(r.run_dir, 'result.json'), 'w') as f:
        json.dump({'status': 'fitted'}, f)
    os.remove(os.path.join(runs[2].run_dir, 'result.json'))  # Incomplete.
    with open(os.path.join(runs[0].run_dir, 'examples.npz'), 'wb') as f:
      f.write(b'npz')
    paths = sweep_lib.pack(runs, res, os.path.join(root, 'out'),
                       max_bytes=4000)
    self.assertLen(paths, 2)  # Two runs of ~3 kB, 4 kB per archive.
    names = []
    for p in paths:
      with tarfile.open(p) as tar:
        names += tar.getnames()
    self.assertCountEqual(names, [
        'exp/a/seed0/result.json', 'exp/a/seed0/history.csv',
        'exp/a/seed0/examples.npz', 'exp/b/seed0/result.json',
        'exp/b/seed0/history.csv'])
    with self.assertRaisesRegex(Exception, 'the limit is 1'):
      sweep_lib.pack(runs, res, os.path.join(root, 'out2'), max_files=1,
                 max_bytes=4000)


if __name__ == '__main__':
  absltest.main()
