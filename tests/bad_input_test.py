"""The bad-input catalogue: each case exits 2 with one line and writes nothing."""

import gzip
import io
import os
import unittest
import zipfile

import numpy as np
from PIL import Image
import tensorflow as tf

import testutil

DATA = testutil.data_dir()


def _idx(array, magic_ndim=None):
  ndim = magic_ndim or array.ndim
  header = (0x800 + ndim).to_bytes(4, 'big') + b''.join(
      d.to_bytes(4, 'big') for d in array.shape)
  return header + array.astype(np.uint8).tobytes()


def _mnist_dir(root, damage):
  """A tiny MNIST folder in IDX format, with one file damaged."""
  rng = np.random.default_rng(0)
  files = {
      'train-images-idx3-ubyte': _idx(rng.integers(0, 256, (20, 28, 28))),
      'train-labels-idx1-ubyte': _idx(rng.integers(0, 10, 20)),
      't10k-images-idx3-ubyte': _idx(rng.integers(0, 256, (10, 28, 28))),
      't10k-labels-idx1-ubyte': _idx(rng.integers(0, 10, 10)),
  }
  if damage == 'header':
    files['train-images-idx3-ubyte'] = _idx(
        rng.integers(0, 256, (20, 28, 28)), magic_ndim=1)
  elif damage == 'truncated':
    files['train-labels-idx1-ubyte'] = files['train-labels-idx1-ubyte'][:-5]
  elif damage == 'size':
    files['train-images-idx3-ubyte'] = _idx(rng.integers(0, 256, (20, 20, 20)))
  for name, raw in files.items():
    with open(os.path.join(root, name), 'wb') as f:
      f.write(raw)
  if damage == 'gzip':
    with open(os.path.join(root, 't10k-images-idx3-ubyte'), 'rb') as f:
      raw = gzip.compress(f.read())
    os.remove(os.path.join(root, 't10k-images-idx3-ubyte'))
    with open(os.path.join(root, 't10k-images-idx3-ubyte.gz'), 'wb') as f:
      f.write(raw[:len(raw) // 2])
  return root


def _cifar_zip(root, damage):
  path = os.path.join(root, 'cifar10-jpeg.zip')
  if damage == 'truncated':
    with open(os.path.join(DATA, 'cifar10', 'cifar10-jpeg.zip'), 'rb') as f:
      raw = f.read(1 << 20)
    with open(path, 'wb') as f:
      f.write(raw)
  elif damage == 'size':  # 16x16 images in the right layout.
    from zhang2017 import data  # pylint: disable=g-import-not-at-top
    with zipfile.ZipFile(path, 'w') as z:
      for split in ('train', 'test'):
        for c in data.CIFAR10_CLASSES:
          buf = io.BytesIO()
          Image.new('RGB', (16, 16)).save(buf, 'JPEG')
          z.writestr(f'{split}/{c}/0000.jpg', buf.getvalue())
  return root


@unittest.skipIf(DATA is None, 'real CIFAR-10 not found: set ZHANG2017_DATA_DIR')
class BadInputTest(tf.test.TestCase):

  def check(self, args, expect, data_dir=DATA):
    out = os.path.join(self.create_tempdir().full_path, 'run')
    args = [a.replace('{out}', out) for a in args]
    if not any(a.startswith('--output_dir') for a in args):
      args.append(f'--output_dir={out}')
    p = testutil.run_module('zhang2017.train', *args,
                            env={'ZHANG2017_DATA_DIR': data_dir})
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    self.assertEqual(p.returncode, 2, p.stderr[-2000:])
    self.assertLen(lines, 1, p.stderr)
    self.assertStartsWith(lines[0], 'error: ')
    self.assertIn(expect, lines[0])
    self.assertFalse(os.path.exists(os.path.join(out, 'result.json')))
    self.assertFalse(os.path.exists(os.path.join(out, 'history.csv')))

  def test_unknown_names(self):
    self.check(['--labels=bogus'], 'should be one of')
    self.check(['--model=nope'], 'should be one of')
    self.check(['--dataset=svhn'], 'should be one of')
    self.check(['--pixels=inverted'], 'should be one of')

  def test_out_of_range_numbers(self):
    self.check(['--labels=partial', '--corrupt_prob=1.5'], 'corrupt_prob')
    self.check(['--batch_size=0'], 'batch_size')
    self.check(['--learning_rate=-0.1'], 'learning_rate')
    self.check(['--lr_decay=0'], 'lr_decay')
    self.check(['--dropout=1.0'], 'dropout')
    self.check(['--train_size=0'], 'train_size')
    self.check(['--weight_decay=nan'], 'weight_decay')

  def test_contradictory_flags(self):
    self.check(['--labels=true', '--corrupt_prob=0.3'], '--labels=partial')
    self.check(['--labels=random', '--corrupt_prob=0.5'], '--labels=partial')
    self.check(['--dataset=mnist', '--random_crop'], 'MNIST')
    self.check(['--dataset=cifar10', '--model=inception_v3'], 'ImageNet')

  def test_missing_data(self):
    self.check(['--data_dir=/nonexistent/data'], 'ZHANG2017_DATA_DIR')
    empty = self.create_tempdir().full_path
    self.check([f'--data_dir={empty}', '--model=mlp_1x512'],
               '--data_dir', data_dir=empty)

  def test_damaged_cifar_zip(self):
    d = _cifar_zip(self.create_tempdir().full_path, 'truncated')
    self.check([f'--data_dir={d}', '--model=mlp_1x512'], 'not a readable zip')
    d = _cifar_zip(self.create_tempdir().full_path, 'size')
    self.check([f'--data_dir={d}', '--model=mlp_1x512'], 'not 32x32')

  def test_damaged_idx_files(self):
    for damage, expect in (('header', 'IDX magic'), ('truncated', 'truncated'),
                           ('size', 'not 28x28'), ('gzip', 'cannot be read')):
      with self.subTest(damage):
        d = _mnist_dir(self.create_tempdir().full_path, damage)
        self.check(['--dataset=mnist', f'--data_dir={d}',
                    '--model=mlp_1x512'], expect)

  def test_unwritable_output_dir(self):
    blocker = self.create_tempfile().full_path  # A file where a folder goes.
    self.check(['--model=mlp_1x512', f'--output_dir={blocker}/run'],
               'writable folder')

  def test_flagfile_with_unknown_flag(self):
    ff = self.create_tempfile(content='--model=mlp_1x512\n--epoch=3\n')
    self.check([f'--flagfile={ff.full_path}'], "Unknown command line flag 'epoch'")

  def test_stray_argument(self):
    self.check(['--model=mlp_1x512', 'extra'], 'unexpected arguments')



class InProcessErrorsTest(tf.test.TestCase):
  """The same contract without a subprocess: a `UserError` naming the fix."""

  def test_sizes(self):
    from zhang2017 import config as config_lib  # pylint: disable=g-import-not-at-top
    from zhang2017 import data  # pylint: disable=g-import-not-at-top
    from zhang2017.errors import UserError  # pylint: disable=g-import-not-at-top
    ds = data.synthetic(300, 50)
    with self.assertRaisesRegex(UserError, r'--train_size=400 is larger than '
                                r'the 300 images of synthetic; use at most 300'):
      data.subset(ds, 400, 0)
    with self.assertRaisesRegex(UserError, '--test_size=51 is larger'):
      data.subset(ds, None, 0, 51)
    self.assertLen(data.subset(ds, 200, 0, 20).x_test, 20)
    for cfg, expect in (
        (config_lib.Config(train_size=100), 'smaller than --batch_size=128'),
        (config_lib.Config(test_size=0), '--test_size=0 must be at least 1'),
        (config_lib.Config(steps_per_call=-1), '--steps_per_call=-1'),
        (config_lib.Config(dataset='imagenet', model='inception_v3',
                           random_crop=True), 'not implemented for ImageNet')):
      with self.subTest(expect):
        with self.assertRaisesRegex(UserError, expect):
          config_lib.validate(cfg)

  def test_data_dir_naming_a_file(self):
    from zhang2017 import data  # pylint: disable=g-import-not-at-top
    from zhang2017.errors import UserError  # pylint: disable=g-import-not-at-top
    f = self.create_tempfile('cifar10-jpeg.zip').full_path
    with self.assertRaisesRegex(UserError, 'is a file; pass the folder'):
      data.load('cifar10', f)


if __name__ == '__main__':
  tf.test.main()
