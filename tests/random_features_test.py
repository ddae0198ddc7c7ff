"""Random convolutional features and kernels from chunked dot products."""

import json
import os
import unittest
import unittest.mock

import numpy as np
import tensorflow as tf

import testutil
from zhang2017.theory import gram as gram_lib
from zhang2017.theory import kernel_lib
from zhang2017.theory import random_features as rf
from zhang2017.training import results
from zhang2017.errors import UserError

DATA = testutil.data_dir()


class RandomFeaturesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.x = np.random.default_rng(0).uniform(0, 1, (40, 32, 32, 3))

  def test_patches_are_normalized_in_the_order_fit_samples_them(self):
    p = rf._patches(self.x[:3])
    self.assertEqual(p.shape, (3, 27 * 27, 108))
    self.assertAllClose(p.mean(-1), np.zeros((3, 729)), atol=1e-5)
    # The patch at row 5, column 7 of image 1, channel-major.
    q = self.x[1, 5:11, 7:13].transpose(2, 0, 1).reshape(1, -1)
    self.assertAllClose(p[1, 5 * 27 + 7], rf._normalize(q)[0], atol=1e-5)

  def test_whitening_and_filters(self):
    g, b = rf.fit(self.x, 16, seed=3, num_patches=20_000)
    self.assertEqual((g.shape, b.shape), ((108, 16), (16,)))
    g2, b2 = rf.fit(self.x, 16, seed=3, num_patches=20_000)
    self.assertAllEqual(g, g2)  # Seeded.
    self.assertAllEqual(b, b2)
    self.assertNotAllClose(g, rf.fit(self.x, 16, seed=4, num_patches=20_000)[0])
    # Whitened patches W (p - m) have covariance S / (S + eps) <= I: so a
    # unit filter's response has variance below 1 and, for these uniform
    # images, near it.
    z = rf._patches(self.x).reshape(-1, 108) @ g + b
    self.assertAllClose(z.mean(0), np.zeros(16), atol=0.05)
    self.assertTrue(((z.var(0) < 1.0) & (z.var(0) > 0.8)).all(), z.var(0))

  def test_features_are_pooled_soft_thresholds(self):
    self.assertAllEqual(rf._pool_matrix(27).sum(1), [196, 182, 182, 169])
    self.assertAllEqual(rf._pool_matrix(27).sum(0), np.ones(729))
    fm = rf.fit(self.x, 8, seed=0, num_patches=5000)
    f = rf.transform(self.x[:4], fm)
    self.assertEqual(f.shape, (4, 64))
    z = rf._patches(self.x[:4]) @ fm[0] + fm[1]  # (4, 729, 8)
    quad = rf._pool_matrix(27)
    want = np.concatenate([quad @ np.maximum(z - rf.ALPHA, 0),
                           quad @ np.maximum(-z - rf.ALPHA, 0)], -1)
    self.assertAllClose(f, want.reshape(4, -1), rtol=1e-4, atol=1e-3)
    # An image's features do not depend on the images beside it.
    self.assertAllEqual(f[1:3], rf.transform(self.x[1:3], fm))
    self.assertAllClose(f, rf.transform(self.x[:4], fm, batch=3), rtol=1e-6)


class GramTest(tf.test.TestCase):

  def test_chunked_dot_products_give_the_direct_interpolant(self):
    rng = np.random.default_rng(0)
    f_train = rng.uniform(0, 1, (300, 40)).astype(np.float32)
    f_test = rng.uniform(0, 1, (70, 40)).astype(np.float32)
    y, y_test = rng.integers(0, 10, 300), rng.integers(0, 10, 70)
    g = gram_lib.Gram(300, 70, tile=128)
    for c in range(0, 40, 16):  # Three uneven chunks.
      g.add(f_train[:, c:c + 16], f_test[:, c:c + 16])
    self.assertEqual(g.dim, 40)
    self.assertAllClose(g.median_gamma(seed=2),
                        kernel_lib.median_gamma(f_train, seed=2), rtol=1e-4)
    for kernel, l2 in (('gaussian', 0.0), ('linear', 0.5)):
      direct = kernel_lib.interpolate(f_train, y, f_test, y_test, 10, kernel,
                                      5.0, l2, tile=128)
      chunked = kernel_lib.interpolate_gram(g, y, y_test, 10, kernel, 5.0, l2)
      for key in ('test_error', 'train_error_sample'):
        self.assertEqual(direct[key], chunked[key], kernel)
      self.assertAllClose(direct['rkhs_norm'], chunked['rkhs_norm'],
                          rtol=1e-3)
      self.assertLess(chunked['max_abs_residual'], 1e-3)
    # Dot products stay: the second kernel did not see the first's tiles.
    self.assertAllClose(g.dots.tiles[0, 0], f_train[:128] @ f_train[:128].T,
                        rtol=1e-5)

  def test_interrupted_sums_resume_to_the_same_dot_products(self):
    rng = np.random.default_rng(1)
    x, x_test = rng.uniform(0, 1, (2, 150, 32, 32, 3)).astype(np.float32)
    args = dict(filters=48, seed=0, tile=64, chunk=16, key={'filters': 48})
    whole, earlier, log = gram_lib.random_feature_gram(
        x, x_test[:40], log=lambda _: None, **args)
    self.assertEqual((earlier, len(log), whole.dim), (0.0, 1, 8 * 48))
    self.assertEqual((log[0]['first_filter'], log[0]['last_filter']), (1, 48))
    path = os.path.join(self.create_tempdir().full_path, 'run', 'gram.npz')

    def killed_after_first_save(line):  # A kill right after gram.npz landed.
      if line.startswith('saved'):
        raise KeyboardInterrupt
    with self.assertRaises(KeyboardInterrupt):
      gram_lib.random_feature_gram(x, x_test[:40], log=killed_after_first_save,
                                   checkpoint=path, checkpoint_seconds=0,
                                   **args)
    lines = []
    resumed, earlier, log = gram_lib.random_feature_gram(
        x, x_test[:40], log=lines.append, checkpoint=path,
        checkpoint_seconds=1e9, **args)
    self.assertIn('16 of 48 filters', lines[0])
    # Chunks 2 and 3, and the save after the last one though 1e9 s have
    # not passed: a failed solve restarts from the sums.
    self.assertEqual(len(lines), 4)
    self.assertIn('saved', lines[-1])
    self.assertEqual([(s['first_filter'], s['last_filter']) for s in log],
                     [(1, 16), (17, 48)])
    for s in log:
      self.assertEqual(s['git_commit'], results.git_commit())
      self.assertTrue(s['device'].startswith('cpu: '), s['device'])
    del lines[:]
    done, _, log = gram_lib.random_feature_gram(
        x, x_test[:40], log=lines.append, checkpoint=path, **args)
    # A third sitting: nothing left to sum (it only solves), and it says so.
    self.assertEqual((len(lines), len(log), done.dim), (1, 3, 8 * 48))
    self.assertNotIn('first_filter', log[2])
    # A gram.npz written before the log: one entry, commits unknown.
    with np.load(path) as z:
      arrays = dict(z)
    meta = json.loads(str(arrays['meta']))
    del meta['sitting_log']
    arrays['meta'] = np.array(json.dumps(dict(meta, sittings=2)))
    np.savez(path, **arrays)
    _, _, log = gram_lib.random_feature_gram(
        x, x_test[:40], log=lines.append, checkpoint=path, **args)
    self.assertEqual((log[0]['git_commit'], log[0]['last_filter'], len(log)),
                     (None, 48, 2))
    self.assertIn('(2 sittings)', log[0]['note'])
    self.assertGreater(earlier, 0.0)
    for name in ('cross', 'sq', 'sq_eval', 'dim'):
      self.assertAllEqual(getattr(resumed, name), getattr(whole, name))
    self.assertEqual(resumed.dots.tiles.keys(), whole.dots.tiles.keys())
    for k, v in whole.dots.tiles.items():
      self.assertAllEqual(resumed.dots.tiles[k], v)
    with self.assertRaisesRegex(UserError, 'made with other flags'):
      gram_lib.random_feature_gram(x, x_test[:40], log=lines.append,
                                   checkpoint=path,
                                   **dict(args, seed=1, key={'filters': 47}))
    with open(path, 'wb') as f:
      f.write(b'truncated')
    with self.assertRaisesRegex(UserError, 'is damaged.*delete it'):
      gram_lib.random_feature_gram(x, x_test[:40], checkpoint=path, **args)

  def test_a_full_disk_costs_the_save_not_the_sums(self):
    rng = np.random.default_rng(2)
    x, x_test = rng.uniform(0, 1, (2, 70, 32, 32, 3)).astype(np.float32)
    args = dict(filters=32, seed=0, tile=64, chunk=16, key={'filters': 32})
    whole, _, _ = gram_lib.random_feature_gram(x, x_test, log=lambda _: None,
                                               **args)
    path = os.path.join(self.create_tempdir().full_path, 'gram.npz')
    real, calls = results.atomic_savez, []

    def disk_full(tmp, **_):  # Part of the file lands, then the disk fills.
      with open(tmp, 'wb') as f:
        f.write(b'partial')
      raise OSError(28, 'No space left on device')

    def second_save_fails(*a, **k):
      calls.append(1)
      if len(calls) != 2:
        return real(*a, **k)
      with unittest.mock.patch.object(np, 'savez', disk_full):
        return real(*a, **k)
    lines = []
    with unittest.mock.patch.object(results, 'atomic_savez',
                                    second_save_fails):
      g, _, _ = gram_lib.random_feature_gram(
          x, x_test, log=lines.append, checkpoint=path, checkpoint_seconds=0,
          **args)
    self.assertIn('could not save', lines[-1])
    self.assertIn('No space left on device', lines[-1])
    self.assertAllEqual(g.cross, whole.cross)
    # The first save stays whole: a resume sums the second chunk again.
    with np.load(path) as z:
      self.assertEqual(json.loads(str(z['meta']))['dim'], 8 * 16)
    # No partial temporary file is left beside it.
    self.assertEqual(os.listdir(os.path.dirname(path)), ['gram.npz'])

  @unittest.skipIf(DATA is None, 'real data not found')
  def test_binary_on_cifar10_subset_beats_pixels(self):
    out = self.create_tempdir().full_path
    errors = {}
    for prep in ('pixels', 'random_features'):
      p = testutil.run_module(
          'zhang2017.kernel', '--dataset=cifar10', '--gamma_rule=median',
          '--train_size=2000', '--tile=700', f'--preprocessing={prep}',
          '--filters=64', '--checkpoint_minutes=0',
          f'--output_dir={out}/{prep}',
          env={'ZHANG2017_DATA_DIR': DATA})
      self.assertEqual(p.returncode, 0, p.stderr[-2000:])
      with open(os.path.join(out, prep, 'result.json')) as f:
        r = json.load(f)
      self.assertEqual(r['train_error_sample'], 0.0)  # Interpolates.
      errors[prep] = r['test_error']
    self.assertIn('512 per image', p.stdout)
    self.assertIn('GFLOP/s', p.stdout)
    self.assertEqual(r['filters'], 64)
    prov = r['provenance']
    self.assertEqual((prov['sittings'], prov['git_commits']),
                     (1, [prov['git_commit']]))
    self.assertEqual(prov['sitting_log'][0]['last_filter'], 64)
    self.assertIn('saved', p.stdout)  # After the one chunk, then deleted.
    self.assertEqual(sorted(os.listdir(os.path.join(out, prep))),
                     ['result.json'])
    self.assertLess(errors['random_features'], errors['pixels'] - 0.05, errors)

  def test_random_features_refuse_grey_images(self):
    p = testutil.run_module('zhang2017.kernel', '--dataset=mnist',
                            '--preprocessing=random_features',
                            env={'ZHANG2017_DATA_DIR': '/nonexistent'})
    self.assertEqual(p.returncode, 2)
    self.assertIn('use it with --dataset=cifar10', p.stderr)


if __name__ == '__main__':
  tf.test.main()
