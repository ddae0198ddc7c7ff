"""tf.distribute: synchronized BatchNorm under MirroredStrategy; two local
workers under MultiWorkerMirroredStrategy end with equal weights."""

import json
import os
import subprocess
import sys
import unittest

import tensorflow as tf

import testutil
from zhang2017 import cli
from zhang2017.training import results
from zhang2017.training import train_lib

DATA = testutil.data_dir()


class MirroredBatchNormTest(tf.test.TestCase):

  def test_two_replicas_normalize_like_one_device(self):
    # Own process: logical devices must be set before TensorFlow starts.
    p = subprocess.run(
        [sys.executable, os.path.join(testutil.ROOT, 'tests',
                                      'mirrored_bn_check.py')],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    r = json.loads(testutil.last_line(p.stdout))
    self.assertEqual(r['replicas'], 2)
    # Per-replica statistics differ by ~0.1 here; synchronized, by rounding.
    self.assertLess(r['max_diff'], 1e-4 * max(1.0, r['scale']))
    # A plug-in model's BatchNorm (nested) too.
    self.assertLess(r['plugin_max_diff'], 1e-4 * max(1.0, r['plugin_scale']))


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found')
class MultiWorkerTest(tf.test.TestCase):

  ARGS = ('zhang2017.train', '--dataset=cifar10', '--model=mlp_1x512',
          '--labels=random', '--train_size=512', '--epochs=2',
          '--learning_rate=0.05')

  def test_two_workers_identical_weights(self):
    out = self.create_tempdir().full_path
    for code, log in testutil.run_workers(
        *self.ARGS, f'--output_dir={out}', env={'ZHANG2017_DATA_DIR': DATA},
        timeout=300):
      self.assertEqual(code, 0, log[-3000:])
    chief, other = [results.load(d)
                    for d in (out, os.path.join(out, 'worker-1'))]
    self.assertEqual(chief['weights_fingerprint'],
                     other['weights_fingerprint'])
    self.assertEqual(chief['train_loss'], other['train_loss'])
    self.assertEqual(chief['epochs'], 2)
    # The two workers train the model one process trains on the same global
    # batches (up to the order of float sums), and that model learns.
    one = self.create_tempdir().full_path
    single = train_lib.train_and_evaluate(cli.config_from_argv(
        ['train', *self.ARGS[1:], f'--output_dir={one}', f'--data_dir={DATA}']),
                                          log=lambda line: None)
    self.assertAllClose(chief['train_loss'], single['train_loss'], rtol=1e-3)
    losses = [float(r['train_eval_loss']) for r in
              results.read_csv(os.path.join(out, results.HISTORY))]
    self.assertLess(losses[1], losses[0] - 0.01)


if __name__ == '__main__':
  tf.test.main()
