"""The randomization tests have the properties PAPER.md section 1 defines."""

import numpy as np
import tensorflow as tf

from zhang2017.data import corruption
from zhang2017.data import datasets as data


def _ds(n=5000, seed=0):
  return data.synthetic(n_train=n, n_test=500, seed=seed)


class CorruptionTest(tf.test.TestCase):

  def test_true_labels_and_p0_are_identity(self):
    ds = _ds()
    for labels, p in (('true', 0.0), ('partial', 0.0)):
      out, rec, changed = corruption.apply(ds, labels, p, seed=3)
      self.assertAllEqual(out.y_train, ds.y_train)
      self.assertAllEqual(out.x_train, ds.x_train)
      self.assertEqual(rec['changed_fraction'], 0.0)
      self.assertFalse(changed.any())

  def test_changed_fraction_is_p_times_one_minus_one_over_k(self):
    ds = _ds(n=20000)
    for p in (0.2, 0.5, 0.8, 1.0):
      labels = 'random' if p == 1.0 else 'partial'
      _, rec, changed = corruption.apply(ds, labels, p, seed=1)
      self.assertAllClose(rec['changed_fraction'], p * 0.9, atol=0.015)
      self.assertEqual(rec['num_changed'], changed.sum())

  def test_new_labels_are_uniform(self):
    ds = _ds(n=20000)
    out, _, _ = corruption.apply(ds, 'random', seed=2)
    counts = np.bincount(out.y_train, minlength=10) / 20000
    self.assertAllClose(counts, np.full(10, 0.1), atol=0.01)

  def test_same_seed_same_bytes_different_seed_different(self):
    ds = _ds()
    for pixels in corruption.PIXEL_KINDS:
      a = corruption.apply(ds, 'partial', 0.3, pixels, seed=7)[1]
      b = corruption.apply(ds, 'partial', 0.3, pixels, seed=7)[1]
      c = corruption.apply(ds, 'partial', 0.3, pixels, seed=8)[1]
      self.assertEqual(a['fingerprint'], b['fingerprint'])
      self.assertNotEqual(a['fingerprint'], c['fingerprint'])

  def test_fingerprint_is_pinned(self):
    # numpy's PCG64 streams are stable across machines and versions: a change
    # here means the corruption changed, and every result would too.
    ds = _ds()
    _, rec, _ = corruption.apply(ds, 'partial', 0.5, 'shuffled', seed=0)
    self.assertEqual(rec['fingerprint'], PINNED)

  def test_test_labels_untouched(self):
    ds = _ds()
    for pixels in corruption.PIXEL_KINDS:
      out, _, _ = corruption.apply(ds, 'random', pixels=pixels, seed=0)
      self.assertAllEqual(out.y_test, ds.y_test)

  def test_shuffled_pixels_one_permutation_for_all_images(self):
    # Images whose first two channels spell each pixel's position and whose
    # third channel names the image: after shuffling, every training and test
    # image must show the same non-identity arrangement of positions.
    ds = _ds(n=40)
    pos = np.arange(1024).reshape(32, 32)
    code = np.stack([pos // 256, pos % 256], -1).astype(np.uint8)
    ds.x_train[..., :2] = code
    ds.x_test[..., :2] = code
    out, _, _ = corruption.apply(ds, pixels='shuffled', seed=0)
    arrangement = lambda img: img[..., 0].astype(int) * 256 + img[..., 1]
    first = arrangement(out.x_train[0])
    self.assertFalse(np.array_equal(first, pos))
    for img in list(out.x_train) + list(out.x_test):
      self.assertAllEqual(arrangement(img), first)
    # Whole pixels move: each image's third channel moves with its position.
    perm = first.ravel()
    self.assertAllEqual(out.x_train[:, :, :, 2].reshape(40, -1),
                        ds.x_train[:, :, :, 2].reshape(40, -1)[:, perm])
    self.assertAllEqual(out.y_train, ds.y_train)

  def test_random_pixels_keep_each_image_multiset_with_own_permutation(self):
    ds = _ds(n=50)
    out, _, _ = corruption.apply(ds, pixels='random', seed=0)
    for i in range(50):
      a = np.sort(ds.x_train[i].reshape(-1, 3).view('V3').ravel())
      b = np.sort(out.x_train[i].reshape(-1, 3).view('V3').ravel())
      self.assertTrue(np.array_equal(a, b))
    # A shared permutation would map image 0 and image 1 the same way.
    ids = np.arange(1024).reshape(1, 32, 32, 1).repeat(2, 0).astype(np.int64)
    rng = np.random.default_rng(0)
    moved = corruption.random_pixels(ids, rng)
    self.assertFalse(np.array_equal(moved[0], moved[1]))
    self.assertAllEqual(np.sort(moved[0].ravel()), np.arange(1024))

  def test_gaussian_matches_per_channel_mean_and_std(self):
    ds = _ds(n=2000)
    ds.x_train[..., 0] //= 4  # Channels with different statistics.
    out, _, _ = corruption.apply(ds, pixels='gaussian', seed=0)
    mean = ds.x_train.mean(axis=(0, 1, 2))
    std = ds.x_train.std(axis=(0, 1, 2))
    self.assertAllClose(out.x_train.mean(axis=(0, 1, 2)), mean, rtol=0.01)
    self.assertAllClose(out.x_train.std(axis=(0, 1, 2)), std, rtol=0.01)
    self.assertAllClose(out.x_test.mean(axis=(0, 1, 2)), mean, rtol=0.02)
    self.assertEqual(out.x_train.dtype, np.float32)

  def test_labels_and_pixels_use_independent_streams(self):
    ds = _ds()
    a, _, _ = corruption.apply(ds, 'random', pixels='none', seed=5)
    b, _, _ = corruption.apply(ds, 'random', pixels='random', seed=5)
    self.assertAllEqual(a.y_train, b.y_train)

  def test_bad_arguments(self):
    ds = _ds(n=10)
    with self.assertRaisesRegex(ValueError, 'labels'):
      corruption.apply(ds, 'bogus')
    with self.assertRaisesRegex(ValueError, 'corrupt_prob'):
      corruption.apply(ds, 'partial', 1.5)


PINNED = '0dfb76821d83d105'

if __name__ == '__main__':
  tf.test.main()
