"""The ImageNet path on a tiny generated dataset of the same structure."""

import os

import numpy as np
from PIL import Image
import tensorflow as tf

import testutil
from zhang2017.data import imagenet
from zhang2017.training import results

SYNSETS = ('n01440764', 'n01443537', 'n01484850')


def make_folder(root, per_class=3):
  """root/imagenet/{train,validation}/<synset>/*.JPEG of assorted sizes."""
  rng = np.random.default_rng(0)
  for split in ('train', 'validation'):
    for s in SYNSETS:
      d = os.path.join(root, 'imagenet', split, s)
      os.makedirs(d)
      for i in range(per_class):
        h, w = rng.integers(200, 400, 2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(
            os.path.join(d, f'{s}_{i}.JPEG'))
  return root


class ImagenetTest(tf.test.TestCase):

  def test_folder_pipeline_shapes_and_labels(self):
    root = make_folder(self.create_tempdir().full_path)
    files, labels, synsets = imagenet.folder_split(
        os.path.join(root, 'imagenet'), 'train')
    self.assertEqual(tuple(synsets), SYNSETS)
    self.assertAllEqual(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    ds = imagenet.folder_dataset(files, labels, True, True, 4)
    x, y = next(iter(ds))
    self.assertEqual(x.shape, (4, 299, 299, 3))
    self.assertEqual(x.dtype, tf.uint8)
    self.assertEqual(y.shape, (4,))

  def test_hashed_labels_fixed_and_about_p(self):
    names = tf.constant([f'img_{i}.JPEG' for i in range(4000)])
    y = tf.zeros(4000, tf.int64)
    a = imagenet.hashed_labels(names, y, 1000, 0.5, seed=3).numpy()
    b = imagenet.hashed_labels(names, y, 1000, 0.5, seed=3).numpy()
    c = imagenet.hashed_labels(names, y, 1000, 0.5, seed=4).numpy()
    self.assertAllEqual(a, b)
    self.assertNotAllEqual(a, c)
    self.assertAllClose((a != 0).mean(), 0.5 * 0.999, atol=0.03)

  def test_two_workers_write_their_own_full_results(self):
    # The one training loop under MultiWorkerMirroredStrategy: each worker
    # its own folder, the result keys of every run, tb/ logs, equal weights.
    root = make_folder(self.create_tempdir().full_path, per_class=2)
    out = self.create_tempdir().full_path
    for code, log in testutil.run_workers(
        'zhang2017.train', '--dataset=imagenet', '--model=inception_v3',
        f'--data_dir={root}', '--labels=random', '--batch_size=6',
        '--eval_batch_size=6', '--epochs=1', f'--output_dir={out}'):
      self.assertEqual(code, 0, log[-3000:])
    runs = []
    for d in (out, os.path.join(out, 'worker-1')):
      r = results.load(d)
      self.assertIsNotNone(r, d)
      self.assertCountEqual(r, results.RESULT_KEYS)
      self.assertTrue(os.path.isdir(os.path.join(d, 'tb')), d)
      runs.append(r)
    chief, other = runs
    self.assertEqual(chief['weights_fingerprint'],
                     other['weights_fingerprint'])
    self.assertEqual(chief['train_size'], 6)
    self.assertEqual(chief['steps_per_epoch'], 1)
    self.assertEqual(chief['train_eval_size'], 6)
    self.assertEqual(chief['test_size'], 6)
    self.assertIsNotNone(chief['test_top5'])
    self.assertIn('image folder', chief['provenance']['dataset_source'])
    self.assertEqual(chief['corruption']['corrupt_prob'], 1.0)
    self.assertEqual(chief['corruption']['num_changed'],
                     round(6 * chief['corruption']['changed_fraction']))


if __name__ == '__main__':
  tf.test.main()
