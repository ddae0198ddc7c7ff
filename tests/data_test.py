"""Dataset sources: the real copies, the official CIFAR formats, tfds."""

import os
import pickle
import tarfile
import unittest

import numpy as np
import tensorflow as tf

import testutil
from zhang2017.data import datasets as data

DATA = testutil.data_dir()


def _fake_cifar_python(root, rng):
  """cifar-10-python.tar.gz with 6 tiny batches in the official layout."""
  folder = os.path.join(root, 'cifar-10-batches-py')
  os.makedirs(folder)
  batches = {}
  for b in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 4).tolist()
    batches[b] = (images, labels)
    with open(os.path.join(folder, b), 'wb') as f:
      pickle.dump({b'data': images.reshape(4, -1), b'labels': labels}, f)
  with tarfile.open(os.path.join(root, 'cifar-10-python.tar.gz'), 'w:gz') as t:
    t.add(folder, arcname='cifar-10-batches-py')
  return batches


class DataTest(tf.test.TestCase):

  @unittest.skipIf(DATA is None, 'real data not found')
  def test_real_cifar10(self):
    ds = data.load('cifar10', DATA)
    self.assertEqual(ds.x_train.shape, (50000, 32, 32, 3))
    self.assertEqual(ds.x_test.shape, (10000, 32, 32, 3))
    self.assertEqual(ds.x_train.dtype, np.uint8)
    self.assertAllEqual(np.bincount(ds.y_train), [5000] * 10)
    self.assertAllEqual(np.bincount(ds.y_test), [1000] * 10)
    # The README's per-channel means of the JPEG copy.
    self.assertAllClose(ds.x_train.mean(axis=(0, 1, 2)) / 255,
                        [0.4913, 0.4821, 0.4465], atol=6e-4)
    self.assertIn('cifar10-jpeg.zip', ds.source)

  @unittest.skipIf(DATA is None, 'real data not found')
  def test_real_mnist(self):
    ds = data.load('mnist', DATA)
    self.assertEqual(ds.x_train.shape, (60000, 28, 28, 1))
    self.assertAllEqual(ds.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    self.assertAllEqual(ds.y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])

  def test_official_python_archive_and_folder(self):
    root = self.create_tempdir().full_path
    batches = _fake_cifar_python(root, np.random.default_rng(0))
    ds = data.load('cifar10', root)
    self.assertEqual(ds.x_train.shape, (20, 32, 32, 3))
    first = batches['data_batch_1'][0][0].transpose(1, 2, 0)
    self.assertAllEqual(ds.x_train[0], first)
    self.assertAllEqual(ds.y_test, batches['test_batch'][1])
    self.assertIn('cifar-10-python.tar.gz', ds.source)
    os.remove(os.path.join(root, 'cifar-10-python.tar.gz'))
    self.assertIn('cifar-10-batches-py', data.load('cifar10', root).source)

  def test_official_binary_folder(self):
    root = self.create_tempdir().full_path
    folder = os.path.join(root, 'cifar-10-batches-bin')
    os.makedirs(folder)
    rng = np.random.default_rng(1)
    rows = {}
    for b in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
      rows[b] = rng.integers(0, 256, (3, 3073), dtype=np.uint8)
      rows[b][:, 0] %= 10
      rows[b].tofile(os.path.join(folder, b))
    ds = data.load('cifar10', root)
    self.assertAllEqual(ds.y_train[:3], rows['data_batch_1.bin'][:3, 0])
    self.assertAllEqual(ds.x_test[0, 0, 0], rows['test_batch.bin'][0, [1, 1025, 2049]])

  def test_prepared_tfds_dataset(self):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    rng = np.random.default_rng(2)
    split = lambda n: {'image': rng.integers(0, 256, (n, 32, 32, 3), np.uint8),
                       'label': rng.integers(0, 10, n)}
    splits = {'train': split(12), 'test': split(5)}
    tfds.dataset_builders.store_as_tfds_dataset(
        name='cifar10', version='3.0.2', data_dir=root,
        split_datasets={k: tf.data.Dataset.from_tensor_slices(v)
                        for k, v in splits.items()},
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(32, 32, 3)),
            'label': tfds.features.ClassLabel(num_classes=10)}))
    ds = data.load('cifar10', root)
    self.assertEqual(ds.x_train.shape, (12, 32, 32, 3))
    self.assertEqual(sorted(ds.y_test.tolist()),
                     sorted(splits['test']['label'].tolist()))
    self.assertStartsWith(ds.source, 'tfds cifar10')

  def test_subset_is_seeded_and_fixed(self):
    ds = data.synthetic(n_train=1000)
    a, b = data.subset(ds, 100, 0), data.subset(ds, 100, 0)
    c = data.subset(ds, 100, 1)
    self.assertAllEqual(a.x_train, b.x_train)
    self.assertNotAllEqual(a.y_train, c.y_train)
    self.assertLen(a.y_train, 100)
    self.assertAllEqual(a.x_test, ds.x_test)
    self.assertIs(data.subset(ds, None, 0), ds)


if __name__ == '__main__':
  tf.test.main()
