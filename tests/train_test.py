"""End to end through the real binary on real CIFAR-10 (subsets)."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
from unittest import mock

import numpy as np
import tensorflow as tf

import testutil
from zhang2017 import cli
from zhang2017.training import config as config_lib
from zhang2017.training import checkpoint
from zhang2017.training import memorization
from zhang2017.training import results
from zhang2017.training import train_lib
from zhang2017.errors import UserError

DATA = testutil.data_dir()
MLP = ['--dataset=cifar10', '--model=mlp_1x512', '--train_size=2000']
SMALL = ['--dataset=cifar10', '--model=mlp_1x512', '--train_size=1000']


def _load(d):
  with open(os.path.join(d, 'result.json')) as f:
    return json.load(f)


def _examples(d):
  return memorization.load(os.path.join(d, memorization.FILE))


def _comparable(result):
  """A result without the fields that measure time or name folders."""
  result = json.loads(json.dumps(result))
  for k in ('wall_seconds', 'train_seconds', 'sittings', 'git_commit',
            'git_commits', 'sitting_log'):
    result['provenance'].pop(k)
  result['flags'].pop('output_dir')
  result['flags'].pop('data_dir')  # Passed in-process, from the env outside.
  return result


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found: set ZHANG2017_DATA_DIR')
class TrainTest(tf.test.TestCase):

  def train(self, *args, backend='tensorflow', env=None):
    """The binary in a subprocess (for JAX, kills, stdout)."""
    return testutil.run_module('zhang2017.train', *args, env={
        'ZHANG2017_DATA_DIR': DATA, 'KERAS_BACKEND': backend, **(env or {})})

  def train_here(self, *args):
    """The binary's parser and loop in this process (TensorFlow): (result,
    log lines)."""
    lines = []
    cfg = cli.config_from_argv(['train', *args, f'--data_dir={DATA}'])
    return train_lib.train_and_evaluate(cfg, log=lines.append), lines

  def test_mlp_memorizes_random_labels_and_resumes_identically(self):
    out = self.create_tempdir().full_path
    r, _ = self.train_here(*SMALL, '--labels=random', '--epochs=60',
                           f'--output_dir={out}')
    self.assertEqual(_load(out), r)
    self.assertCountEqual(r, results.RESULT_KEYS)
    self.assertEqual(r['status'], 'fitted')
    self.assertEqual(r['train_accuracy'], 1.0)
    self.assertLess(r['test_accuracy'], 0.2)
    self.assertEqual(r['params'], 1_209_866)
    self.assertEqual(r['epochs_to_fit'], r['epochs'])
    self.assertEqual(r['train_size'], 1000)
    self.assertAllClose(r['corruption']['changed_fraction'], 0.9, atol=0.03)
    for key in ('git_commit', 'backend', 'versions', 'device',
                'dataset_source', 'wall_seconds', 'sitting_log'):
      self.assertIn(key, r['provenance'])
    self.assertIn('cifar10-jpeg.zip', r['provenance']['dataset_source'])
    with open(os.path.join(out, 'history.csv')) as f:
      self.assertLen(f.readlines(), r['epochs'] + 1)
    self.assertNotEmpty(os.listdir(os.path.join(out, 'tb')))
    self.assertFalse(os.path.exists(os.path.join(out, 'checkpoint.npz')))
    self.check_examples(out, r)
    # A complete run is never retrained.
    again, lines = self.train_here(*SMALL, '--labels=random', '--epochs=60',
                                   f'--output_dir={out}')
    self.assertIn('not retraining', lines[-1])
    self.assertEqual(again, r)
    # Killed in its 5th epoch and started again: the same run, to the bit.
    self.check_resume([*SMALL, '--labels=random', '--epochs=60'], out,
                      'tensorflow')

  def test_partial_labels_record_changed_fraction_and_both_accuracies(self):
    out = self.create_tempdir().full_path
    r, _ = self.train_here(*MLP, '--labels=partial', '--corrupt_prob=0.5',
                           '--epochs=2', f'--output_dir={out}')
    self.assertBetween(r['corruption']['changed_fraction'], 0.42, 0.48)
    self.assertEqual(r['status'], 'not_fitted')
    self.assertIsNone(r['epochs_to_fit'])
    n_changed = r['corruption']['num_changed']
    overall = (r['train_accuracy_changed'] * n_changed +
               r['train_accuracy_kept'] * (2000 - n_changed)) / 2000
    self.assertAllClose(overall, r['train_accuracy'], atol=1e-9)
    self.check_examples(out, r)

  def check_examples(self, out, r):
    """examples.npz agrees with the result: the examples fitted at the end
    are those right at the last evaluation, overall and among the changed."""
    ex = _examples(out)
    fitted = ex['first_fitted_epoch'] > 0
    changed = ex['label_changed'].astype(bool)
    self.assertLen(fitted, r['train_size'])
    self.assertEqual(int(ex['evaluations']), r['epochs'])
    self.assertLessEqual(ex['first_fitted_epoch'].max(), r['epochs'])
    self.assertEqual(changed.sum(), r['corruption']['num_changed'])
    self.assertAllClose(fitted.mean(), r['train_accuracy'], atol=1e-9)
    self.assertAllClose(fitted[changed].mean(), r['train_accuracy_changed'],
                        atol=1e-9)
    self.assertTrue((ex['margin'][fitted] >= 0).all())
    self.assertTrue((ex['margin'][~fitted] <= 0).all())

  def test_both_backends_same_data_full_batches_one_program_each(self):
    args = [*MLP, '--train_size=500', '--labels=partial', '--corrupt_prob=0.3',
            '--pixels=shuffled', '--epochs=2', '--eval_batch_size=300']
    outs = {}
    for per_call in (1, 0):
      out = outs['jax', per_call] = self.create_tempdir().full_path
      p = self.train(*args, f'--steps_per_call={per_call}',
                     f'--output_dir={out}', backend='jax')
      self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    out = outs['tensorflow', 1] = self.create_tempdir().full_path
    tf_r, _ = self.train_here(*args, f'--output_dir={out}')
    self.assertEqual(tf_r['provenance']['backend'], 'tensorflow')
    for per_call in (1, 0):  # A jitted step in a loop; a whole-epoch scan.
      jax_r = _load(outs['jax', per_call])
      self.assertEqual(jax_r['provenance']['backend'], 'jax')
      self.assertEqual(tf_r['corruption'], jax_r['corruption'])
      # 500 images, batch 128: 3 full steps per epoch; eval batches of 300
      # for 500 train and 10,000 test images: one program each.
      self.assertEqual(jax_r['steps_per_epoch'], 3)
      self.assertEqual(jax_r['provenance']['compiled_programs'],
                       {'train': 1, 'eval': 1})
    self.assertEqual(tf_r['steps_per_epoch'], 3)
    with open(os.path.join(outs['tensorflow', 1], 'history.csv')) as f:
      self.assertEqual([int(l.split(',')[1]) for l in f.readlines()[1:]],
                       [3, 6])

  def test_running_accuracy_is_the_training_mode_accuracy(self):
    # With a learning rate too small to move float32 weights, every one of
    # the 512 examples is seen once in 4 full batches by the same function:
    # without crops the running accuracy is exactly the inference-mode
    # accuracy; with random crops (training mode) it is not.
    got = {}
    for crop in ((), ('--random_crop',)):
      out = self.create_tempdir().full_path
      p = self.train(*MLP, '--train_size=512', '--epochs=1',
                     '--learning_rate=1e-12', *crop, f'--output_dir={out}',
                     backend='jax')
      self.assertEqual(p.returncode, 0, p.stderr[-2000:])
      r = _load(out)
      got[bool(crop)] = (r['train_accuracy_running'], r['train_accuracy'])
    self.assertEqual(got[False][0], got[False][1])
    self.assertEqual(got[True][1], got[False][1])  # Centre crops: same.
    self.assertNotEqual(got[True][0], got[True][1])

  def test_default_run_folder_is_derived_from_the_flags(self):
    cwd = self.create_tempdir().full_path
    p = testutil.run_module(
        'zhang2017.train', '--model=mlp_1x512', '--labels=random',
        '--epochs=1', '--train_size=256', cwd=cwd,
        env={'ZHANG2017_DATA_DIR': DATA, 'KERAS_BACKEND': 'jax'})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    folder = 'runs/cifar10-mlp_1x512-random-epochs1-train_size256-seed0'
    self.assertEqual(p.stdout.splitlines()[0], f'run folder: {folder}')
    self.assertEqual(_load(os.path.join(cwd, folder))['train_size'], 256)
    self.assertRegex(p.stdout, r'elapsed 0:\d\d, at most 0:00 to the epoch '
                     'limit')

  def test_sigkill_then_resume_equals_uninterrupted_run_jax(self):
    args = [*SMALL, '--labels=random', '--epochs=8', '--dropout=0.3']
    ref = self.create_tempdir().full_path
    self.assertEqual(self.train(*args, f'--output_dir={ref}',
                                backend='jax').returncode, 0)
    self.check_resume(args, ref, 'jax')

  def check_resume(self, args, ref, backend):
    """Kills a run of `args` in its 5th epoch, resumes it, and compares it
    with the uninterrupted run in `ref` (weights fingerprint included)."""
    out = self.create_tempdir().full_path
    env = {**os.environ, 'PYTHONPATH': testutil.ROOT,
           'ZHANG2017_DATA_DIR': DATA, 'KERAS_BACKEND': backend}
    proc = subprocess.Popen(
        [sys.executable, '-m', 'zhang2017.train', *args, f'--output_dir={out}'],
        cwd=testutil.ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    history = os.path.join(out, 'history.csv')
    deadline = time.time() + 120
    while time.time() < deadline:  # Kill during the 5th epoch.
      if os.path.exists(history) and len(open(history).readlines()) >= 5:
        break
      time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    self.assertFalse(os.path.exists(os.path.join(out, 'result.json')))
    # The second sitting runs at another commit (a queue moved to a newer
    # head): the result names both.
    p = self.train(*args, f'--output_dir={out}', backend=backend,
                   env={'ZHANG2017_GIT_COMMIT': 'f' * 40})
    self.assertIn('resuming', p.stdout)
    prov = _load(out)['provenance']
    self.assertEqual(prov['sittings'], 2)
    self.assertEqual(prov['git_commits'],
                     [_load(ref)['provenance']['git_commit'], 'f' * 40])
    self.assertEqual(_load(ref)['provenance']['sittings'], 1)
    # The sitting log says which commit and machine trained which epochs.
    log = prov['sitting_log']
    ref_log = _load(ref)['provenance']['sitting_log']
    self.assertEqual([s['git_commit'] for s in log], prov['git_commits'])
    self.assertEqual(log[0]['device'], ref_log[0]['device'])
    self.assertEqual([(s['first_epoch'], s['last_epoch']) for s in log],
                     [(1, log[0]['last_epoch']),
                      (log[0]['last_epoch'] + 1, _load(ref)['epochs'])])
    # history.csv is written just before the checkpoint: 3 or 4 epochs.
    self.assertGreaterEqual(log[0]['last_epoch'], 3)
    self.assertEqual([(s['first_epoch'], s['last_epoch']) for s in ref_log],
                     [(1, _load(ref)['epochs'])])
    self.assertEqual(_comparable(_load(out)), _comparable(_load(ref)))
    self.assertEqual(_load(out)['weights_fingerprint'],
                     _load(ref)['weights_fingerprint'])
    # The per-example records travelled in the checkpoint: the same file.
    ex, ex_ref = _examples(out), _examples(ref)
    self.assertCountEqual(ex, ex_ref)
    for k, v in ex_ref.items():
      self.assertEqual(ex[k].dtype, v.dtype, k)
      self.assertAllEqual(ex[k], v, k)

  def test_resume_refuses_other_flags(self):
    out = self.create_tempdir().full_path
    # The checkpoint an interrupted run with --labels=true would have left.
    cfg = config_lib.Config(model='mlp_1x512', labels='true', output_dir=out)
    np.savez(os.path.join(out, checkpoint.CHECKPOINT),
             meta=np.array(json.dumps({'run_key': cfg.run_key(),
                                       'history': [], 'status': None})))
    with self.assertRaisesRegex(UserError, 'holds a run with other flags'):
      self.train_here(*MLP, '--labels=random', '--epochs=1',
                      f'--output_dir={out}')
    self.assertFalse(os.path.exists(os.path.join(out, 'result.json')))

  def test_divergence_and_epoch_limit_are_outcomes(self):
    out = self.create_tempdir().full_path
    r, _ = self.train_here(*MLP, '--learning_rate=1e6', '--epochs=5',
                           f'--output_dir={out}')
    self.assertEqual(r['status'], 'diverged')
    self.assertLess(r['epochs'], 5)
    out = self.create_tempdir().full_path
    r, _ = self.train_here(*MLP, '--labels=random', '--epochs=2',
                           f'--output_dir={out}')
    self.assertEqual((r['status'], r['epochs'], r['epochs_to_fit']),
                     ('not_fitted', 2, None))
    self.assertLess(r['train_accuracy'], 1.0)

  def test_killed_before_its_result_a_sitting_that_only_writes_it(self):
    out = self.create_tempdir().full_path
    args = (*MLP, '--labels=random', '--epochs=2', f'--output_dir={out}')
    write_json = results.write_json

    def killed_at_result(path, obj):  # After the last epoch's checkpoint.
      if path.endswith(results.RESULT):
        raise KeyboardInterrupt
      write_json(path, obj)
    with mock.patch.object(train_lib.results, 'write_json', killed_at_result):
      with self.assertRaises(KeyboardInterrupt):
        self.train_here(*args)
    self.assertTrue(os.path.exists(os.path.join(out, checkpoint.CHECKPOINT)))
    # A checkpoint from before 'eval_sizes': one more pass gives the sizes.
    old = self.create_tempdir().full_path
    with np.load(os.path.join(out, checkpoint.CHECKPOINT)) as z:
      arrays = dict(z)
    meta = json.loads(str(arrays['meta']))
    del meta['eval_sizes']
    arrays['meta'] = np.array(json.dumps(meta))
    np.savez(os.path.join(old, checkpoint.CHECKPOINT), **arrays)
    evaluate = train_lib._evaluate
    with mock.patch.object(train_lib, '_evaluate', wraps=evaluate) as ev:
      r_old, _ = self.train_here(*args[:-1], f'--output_dir={old}')
    self.assertEqual(ev.call_count, 2)
    with mock.patch.object(train_lib, '_evaluate', wraps=evaluate) as ev:
      r, lines = self.train_here(*args)
    # The split sizes come from the checkpoint: no evaluation pass (costly
    # on ImageNet) just to write the result.
    self.assertEqual(ev.call_count, 0)
    self.assertTrue(any(l.startswith('resuming') for l in lines), lines)
    self.assertEqual((r['status'], r['epochs']), ('not_fitted', 2))
    self.assertEqual((r['train_eval_size'], r['test_size']),
                     (r_old['train_eval_size'], r_old['test_size']))
    log = r['provenance']['sitting_log']
    # Every sitting is in the log: the second trained nothing.
    self.assertLen(log, r['provenance']['sittings'])
    self.assertEqual((log[0]['first_epoch'], log[0]['last_epoch']), (1, 2))
    self.assertEqual((log[1]['git_commit'], log[1]['device']),
                     (log[0]['git_commit'], log[0]['device']))
    self.assertIn('no epochs', log[1]['note'])
    self.assertNotIn('first_epoch', log[1])
    # The same result as the run never killed.
    ref = self.create_tempdir().full_path
    self.assertEqual(_comparable(r), _comparable(self.train_here(
        *args[:-1], f'--output_dir={ref}')[0]))


if __name__ == '__main__':
  tf.test.main()
