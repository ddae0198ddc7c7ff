"""A sweep under a deadline: the ledger's expected times, the start rule in
run_all, the form rule, and what travels to and from the device."""

import json
import os
import tarfile
import time

from absl.testing import absltest

from sweep_test import _Fake
from sweep_test import _write_flags
from zhang2017.sweeps import carry
from zhang2017.sweeps import deadline
from zhang2017.sweeps import sweep_lib


def _ledger(folder, programs, startup=2.0):
  led = deadline.Ledger(folder)
  led.data['startup_s'] = startup
  for pid, kw in programs.items():
    led.record(pid, 'x', **kw)
  led.save()
  return deadline.Ledger(folder)


def _write(path, data=b'x'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


class LedgerTest(absltest.TestCase):

  def test_expected_time_rule(self):
    d = self.create_tempdir().full_path
    self.assertIsNone(deadline.Ledger(d).expected_s('a', 10))  # No rule yet.
    led = _ledger(d, {'a': dict(compile_s=30, epoch_s=1.0),
                      'b': dict(compile_s=50, epoch_s=3.0),
                      'c': dict(cut_s=80)})
    self.assertEqual(led.expected_s('a', 10), 2 + 10 * 1.0)  # Cached.
    # Unknown: the slowest compile and epoch in the ledger.
    self.assertEqual(led.expected_s('new', 10), 2 + 50 + 10 * 3.0)
    # Its compile was cut after 80 s once: at least that.
    self.assertEqual(led.expected_s('c', 10), 2 + 80 + 10 * 3.0)
    self.assertTrue(led.compiled('a'))
    self.assertFalse(led.compiled('c'))

  def test_observe_splits_compile_from_epochs(self):
    led = deadline.Ledger(self.create_tempdir().full_path)
    led.observe('p', 'x', [{'seconds': '12'}, {'seconds': '2'},
                           {'seconds': '3'}])
    self.assertEqual(led.programs['p']['compile_s'], 9.5)
    self.assertEqual(led.programs['p']['epoch_s'], 2.5)
    led.observe('p', 'x', [{'seconds': '4'}, {'seconds': '4'}])
    self.assertEqual(led.programs['p']['compile_s'], 9.5)  # Compiled once.
    self.assertEqual(led.programs['p']['epoch_s'], 4.0)  # The latest.

  def test_choose_least_plan_time_or_none(self):
    root = self.create_tempdir().full_path
    _write_flags(root, ['a', 'b'], {'b': '--weight_decay=0.1\n'})
    todo = sweep_lib.plan('exp', flags_dir=root,
                          results_dir=os.path.join(root, 'r'))
    led = deadline.Ledger(root)
    # Two programs x 100 epochs: 'step' compiles fast, 'epoch' trains fast.
    measured = [('epoch', {'compile_s': 100, 'epoch_s': 1.0}),
                ('step', {'compile_s': 10, 'epoch_s': 2.0}),
                ('step-autotune0', None)]
    best, costs = deadline.choose(measured, todo, [], led)
    self.assertEqual(costs, {'epoch': 400, 'step': 420})
    self.assertEqual(best, 'epoch')
    self.assertEqual(deadline.choose([('step', None)], todo, [], led),
                     (None, {}))

  def test_case_flags_replace_steps_per_call(self):
    self.assertEqual(
        deadline.case_flags('step-autotune0', ['--epochs=1',
                                               '--steps_per_call=0']),
        (['--epochs=1', '--steps_per_call=1'], '--xla_gpu_autotune_level=0'))


class StartRuleTest(absltest.TestCase):

  def _runs(self, root):
    _write_flags(root, ['a', 'b'])
    return sweep_lib.plan('exp', flags_dir=root,
                          results_dir=os.path.join(root, 'r'))

  def test_run_that_does_not_fit_never_starts(self):
    root = self.create_tempdir().full_path
    runs = self._runs(root)
    rule = deadline.Rule(root, xla_flags='')
    _ledger(root, {rule.pid(runs[0]): dict(compile_s=1, epoch_s=50)})
    rule = deadline.Rule(root, xla_flags='')
    logs, t0 = [], time.time()
    with _Fake(root):
      failed, cut = sweep_lib.run_all(runs, log=logs.append, time_limit=60,
                                      rule=rule)
    self.assertLess(time.time() - t0, 10)  # It did not wait for the limit.
    self.assertEqual((failed, cut), (0, 0))
    self.assertFalse(os.path.exists(runs[0].run_dir))
    self.assertIn('not started: exp/a seed 0 expects 5002s', '\n'.join(logs))
    self.assertIn('2 runs not started', logs[-1])

  def test_known_program_needs_no_first_epoch_wait(self):
    root = self.create_tempdir().full_path
    runs = self._runs(root)  # One program.
    rule = deadline.Rule(root, xla_flags='')
    _ledger(root, {rule.pid(runs[0]): dict(compile_s=1, epoch_s=0.01)},
            startup=0.1)
    with _Fake(root, compile_s=1.0, total_s=1.5):
      sweep_lib.run_all(runs, parallel=2, log=lambda s: None,
                        time_limit=60, rule=deadline.Rule(root, xla_flags=''))
    spans = []
    for r in runs:
      with open(os.path.join(r.run_dir, 'result.json')) as f:
        spans.append(json.load(f)['t'])
    self.assertLess(abs(spans[1][0] - spans[0][0]), 0.9)  # Started together.


class CarryTest(absltest.TestCase):

  def test_pack_units_within_files_and_bytes(self):
    root = self.create_tempdir().full_path
    units = []
    for i in range(4):
      _write(os.path.join(root, 'c', f'f{i}'), os.urandom(9 * carry.MiB))
      units.append([os.path.join(root, 'c', f'f{i}')])
    out = os.path.join(root, 'out')
    os.makedirs(out)
    paths, left = carry.pack_units(units, root, out, 'cache', 3, 20 * carry.MiB)
    self.assertLen(paths, 2)  # 9 MiB each (incompressible): 20 MiB holds two.
    self.assertLen(left, 2)
    self.assertCountEqual(os.listdir(out), ['cache-0.tgz', 'cache-1.tgz'])
    paths, left = carry.pack_units(units, root, out, 'more', 1, 64 * carry.MiB)
    self.assertLen(paths, 1)
    self.assertLen(left, 3)

  def test_checkpoints_of_this_session_most_trained_first(self):
    res = self.create_tempdir().full_path
    for run, epochs in (('e/a/seed0', 1), ('e/b/seed0', 3), ('e/c/seed0', 2)):
      _write(os.path.join(res, run, carry.CHECKPOINT))
      _write(os.path.join(res, run, 'history.csv'),
             ('seconds\n' + '1\n' * epochs).encode())
    old = os.path.join(res, 'e/c/seed0', carry.CHECKPOINT)
    os.utime(old, (1, 1))  # Carried in, not trained here.
    units = carry.checkpoint_units(res, since=100)
    self.assertEqual([os.path.relpath(u[0], res) for u in units],
                     ['e/b/seed0/checkpoint.npz', 'e/a/seed0/checkpoint.npz'])

  def test_unpack_round_trip_and_carry_budget(self):
    root = self.create_tempdir().full_path
    src, res, cdir, held = (os.path.join(root, n) for n in
                            ('src', 'res', 'carry', 'held'))
    dev = os.path.join(root, 'dev')
    _write(os.path.join(dev, 'results', 'e/done/seed0/result.json'), b'{}')
    _write(os.path.join(dev, 'carry', 'jax-cache', 'jit_f-cache'), b'c' * 100)
    _write(os.path.join(dev, 'carry', 'ledger.json'), b'{}')
    for run, size in (('e/big/seed0', 5000), ('e/small/seed0', 1000),
                      ('e/done/seed0', 10)):
      _write(os.path.join(dev, 'results', run, carry.CHECKPOINT),
             os.urandom(size))
    # An older checkpoint of e/small, carried before: replaced.
    _write(os.path.join(cdir, 'checkpoints', 'e/small/seed0',
                        carry.CHECKPOINT), b'old')
    os.makedirs(src)
    carry.pack([sweep_lib.Run('e', 'done', 0, '', os.path.join(
        dev, 'results', 'e/done/seed0'))], os.path.join(dev, 'results'), src)
    carry.pack_units([[p] for p in carry.new_files(os.path.join(
        dev, 'carry'), 0)], os.path.join(dev, 'carry'), src, 'cache', 2,
                     carry.MiB)
    carry.pack_units([[os.path.join(dev, 'results', r, carry.CHECKPOINT)]
                      for r in ('e/big/seed0', 'e/small/seed0',
                                'e/done/seed0')],
                     os.path.join(dev, 'results'), src, 'checkpoints', 1,
                     carry.MiB)
    got = carry.unpack(src, res, cdir, held, room=100 + 2 + 1000 + 500)
    self.assertTrue(os.path.exists(os.path.join(res, 'e/done/seed0',
                                                'result.json')))
    with open(os.path.join(cdir, 'jax-cache', 'jit_f-cache'), 'rb') as f:
      self.assertEqual(f.read(), b'c' * 100)
    # The finished run's checkpoint is gone; the small one fits, the big
    # one waits outside the carried folder.
    self.assertEqual(got['checkpoints'], ['e/small/seed0'])
    self.assertEqual(got['held'], ['e/big/seed0'])
    self.assertEqual(os.path.getsize(os.path.join(
        cdir, 'checkpoints', 'e/small/seed0', carry.CHECKPOINT)), 1000)
    self.assertTrue(os.path.exists(os.path.join(
        held, 'e/big/seed0', carry.CHECKPOINT)))
    self.assertFalse(os.path.exists(os.path.join(cdir, 'checkpoints',
                                                 'e/done/seed0')))

  def test_compile_events(self):
    log = '\n'.join([
        "W compiler.py] PERSISTENT COMPILATION CACHE MISS for "
        "'jit_zhang2017_train' with key 'k'",
        'W dispatch.py] Finished XLA compilation of jit(zhang2017_train) in '
        '4.5 sec',
        "W compiler.py] Persistent compilation cache hit for 'jit__uniform' "
        "with key 'k'",
        'W dispatch.py] Finished XLA compilation of jit(_uniform) in 0.1 sec'])
    self.assertEqual(carry.compile_events(log),
                     [('zhang2017_train', 'compiled', 4.5),
                      ('_uniform', 'hit', 0.1)])


if __name__ == '__main__':
  absltest.main()
