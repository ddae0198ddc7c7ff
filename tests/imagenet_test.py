"""The ImageNet path on a tiny generated dataset of the same structure."""

import json
import os

import numpy as np
from PIL import Image
import tensorflow as tf

import testutil
from zhang2017 import imagenet

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
    ds = imagenet.folder_dataset(files, labels, True, True, 4, seed=0)
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

  def test_train_binary_on_tiny_imagenet(self):
    root = make_folder(self.create_tempdir().full_path, per_class=2)
    out = self.create_tempdir().full_path
    p = testutil.run_module(
        'zhang2017.train', '--dataset=imagenet', '--model=inception_v3',
        f'--data_dir={root}', '--labels=random', '--batch_size=6',
        '--epochs=1', '--dropout=0.2', f'--output_dir={out}',
        env={'KERAS_BACKEND': 'tensorflow'})
    self.assertEqual(p.returncode, 0, p.stderr[-3000:])
    with open(os.path.join(out, 'result.json')) as f:
      r = json.load(f)
    self.assertEqual(r['train_size'], 6)
    self.assertIn('test_top5', r)
    self.assertIn('image folder', r['provenance']['dataset_source'])
    self.assertEqual(r['corruption']['corrupt_prob'], 1.0)


if __name__ == '__main__':
  tf.test.main()
