"""The bad-input catalogue: every case is a `UserError` naming the fix, and
nothing is written. Most cases run in-process through the parser and the
loop the binary uses; a few run the binary itself for the process contract
(exit 2, one line on stderr, no result files)."""

import io
import os
import zipfile

from absl.testing import absltest
from PIL import Image

import testutil
from zhang2017 import cli
from zhang2017.training import config as config_lib
from zhang2017.data import datasets as data
from zhang2017.data import readers
from zhang2017.training import train_lib
from zhang2017.errors import UserError


def _cifar_zip(root, damage):
  path = os.path.join(root, 'cifar10-jpeg.zip')
  if damage == 'truncated':  # The start of a zip, cut off.
    with zipfile.ZipFile(path, 'w') as z:
      z.writestr('train/airplane/0000.jpg', os.urandom(4096))
    with open(path, 'rb') as f:
      raw = f.read()
    with open(path, 'wb') as f:
      f.write(raw[:len(raw) // 2])
  elif damage == 'size':  # 16x16 images in the right layout.
    with zipfile.ZipFile(path, 'w') as z:
      for split in ('train', 'test'):
        for c in readers.CIFAR10_CLASSES:
          buf = io.BytesIO()
          Image.new('RGB', (16, 16)).save(buf, 'JPEG')
          z.writestr(f'{split}/{c}/0000.jpg', buf.getvalue())
  return root


class InProcessTest(absltest.TestCase):
  """`train_lib.train_and_evaluate(cli.config_from_argv(argv))` raises a
  UserError matching the expectation and leaves the output folder empty."""

  def check(self, args, expect, data_dir=None):
    out = os.path.join(self.create_tempdir().full_path, 'run')
    args = [a.replace('{out}', out) for a in args]
    if not any(a.startswith('--output_dir') for a in args):
      args.append(f'--output_dir={out}')
    if data_dir and not any(a.startswith('--data_dir') for a in args):
      args.append(f'--data_dir={data_dir}')
    with self.assertRaisesRegex(UserError, expect):
      train_lib.train_and_evaluate(cli.config_from_argv(['train', *args]),
                                   log=lambda line: None)
    self.assertFalse(os.path.exists(os.path.join(out, 'result.json')))
    self.assertFalse(os.path.exists(os.path.join(out, 'history.csv')))

  def test_unknown_names(self):
    for flag in ('--labels=bogus', '--model=nope', '--pixels=inverted'):
      with self.subTest(flag):
        self.check([flag], 'should be one of')
    # --dataset also takes tfds:, folder: and module:function forms.
    self.check(['--dataset=svhn'], '^--dataset=svhn is not known; use one '
               'of cifar10, mnist, imagenet, tfds:NAME')

  def test_out_of_range_numbers(self):
    for args, expect in (
        (['--labels=partial', '--corrupt_prob=1.5'], 'corrupt_prob'),
        (['--batch_size=0'], 'batch_size'),
        (['--learning_rate=-0.1'], 'learning_rate'),
        (['--lr_decay=0'], 'lr_decay'),
        (['--dropout=1.0'], 'dropout'),
        (['--train_size=0'], 'train_size'),
        (['--train_size=100'], 'smaller than --batch_size=128'),
        (['--test_size=0'], '--test_size=0 must be at least 1'),
        (['--steps_per_call=-1'], '--steps_per_call=-1'),
        (['--weight_decay=nan'], 'weight_decay'),
        (['--seed=-1'], '--seed=-1 is out of range; use a value >= 0'),
        (['--seed=4294967296'], 'and <= 4294967295')):
      with self.subTest(args[-1]):
        self.check(args, expect)

  def test_contradictory_flags(self):
    for args, expect in (
        (['--labels=true', '--corrupt_prob=0.3'], '--labels=partial'),
        (['--labels=random', '--corrupt_prob=0.5'], '--labels=partial'),
        (['--dataset=mnist', '--random_crop'], 'MNIST'),
        (['--dataset=cifar10', '--model=inception_v3'], 'ImageNet'),
        (['--dataset=imagenet', '--model=inception_v3', '--random_crop'],
         'not implemented for ImageNet'),
        (['--dataset=imagenet', '--model=inception_v3', '--pixels=shuffled'],
         '--pixels=none')):
      with self.subTest(' '.join(args)):
        self.check(args, expect)

  def test_command_line_mistakes(self):
    ff = self.create_tempfile(content='--model=mlp_1x512\n--epoch=3\n')
    self.check([f'--flagfile={ff.full_path}'],
               "Unknown command line flag 'epoch'")
    self.check(['--model=mlp_1x512', 'extra'], 'unexpected arguments extra')
    missing = os.path.join(self.create_tempdir().full_path, 'missing.flags')
    self.check([f'--flagfile={missing}'],
               f'^cannot read --flagfile={missing} \\(No such file')

  def test_missing_data(self):
    self.check(['--data_dir=/nonexistent/data'], 'ZHANG2017_DATA_DIR')
    empty = self.create_tempdir().full_path
    self.check([f'--data_dir={empty}', '--model=mlp_1x512'], '--data_dir')
    f = self.create_tempfile('cifar10-jpeg.zip').full_path
    self.check([f'--data_dir={f}'], 'is a file; pass the folder')

  def test_sizes_above_the_dataset(self):
    d = testutil.mnist_dir(self.create_tempdir().full_path, None)
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=4', '--train_size=400'],
               r'--train_size=400 is larger than the 20 images of mnist; use '
               'at most 20')
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=4', '--test_size=11'], '--test_size=11 is larger')
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=64'],  # No --train_size: the whole 20.
               '--batch_size=64 is larger than the 20 training images')
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=4', '--eval_batch_size=1001'],
               r'--eval_batch_size=1001 is larger than both splits \(20 and '
               r'10 images\); its batches would be padding; use at most 1000')
    self.assertLen(data.subset(data.synthetic(300, 50), 200, 0, 20).x_test, 20)

  def test_damaged_cifar_zip(self):
    d = _cifar_zip(self.create_tempdir().full_path, 'truncated')
    self.check([f'--data_dir={d}', '--model=mlp_1x512'], 'not a readable zip')
    d = _cifar_zip(self.create_tempdir().full_path, 'size')
    self.check([f'--data_dir={d}', '--model=mlp_1x512'], 'not 32x32')

  def test_damaged_idx_files(self):
    for damage, expect in (('header', 'IDX magic'), ('truncated', 'truncated'),
                           ('size', 'not 28x28'), ('gzip', 'cannot be read')):
      with self.subTest(damage):
        d = testutil.mnist_dir(self.create_tempdir().full_path, damage)
        self.check(['--dataset=mnist', f'--data_dir={d}',
                    '--model=mlp_1x512'], expect)

  def test_unwritable_output_dir(self):
    d = testutil.mnist_dir(self.create_tempdir().full_path, None)
    blocker = self.create_tempfile().full_path  # A file where a folder goes.
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=4', f'--output_dir={blocker}/run'],
               'writable folder')

  def test_imagenet_without_a_folder(self):
    empty = self.create_tempdir().full_path
    self.check(['--dataset=imagenet', '--model=inception_v3',
                f'--data_dir={empty}/nope'], 'ImageNet needs --data_dir')

  def test_every_config_check_names_its_flag(self):
    for cfg, expect in (
        (config_lib.Config(train_size=100), '--train_size=100'),
        (config_lib.Config(epochs=0), '--epochs=0'),
        (config_lib.Config(momentum=1.5), '--momentum=1.5')):
      with self.subTest(expect):
        with self.assertRaisesRegex(UserError, expect):
          config_lib.validate(cfg)


class ProcessContractTest(absltest.TestCase):
  """The binary: exit status 2, `error: ` and one line, nothing written."""

  def check(self, args, expect, env=None):
    out = os.path.join(self.create_tempdir().full_path, 'run')
    args = [a.replace('{out}', out) for a in args]
    if not any(a.startswith('--output_dir') for a in args):
      args.append(f'--output_dir={out}')
    p = testutil.run_module('zhang2017.train', *args, env=env)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    self.assertEqual(p.returncode, 2, p.stderr[-2000:])
    self.assertLen(lines, 1, p.stderr)
    self.assertStartsWith(lines[0], 'error: ')
    self.assertIn(expect, lines[0])
    self.assertFalse(os.path.exists(os.path.join(out, 'result.json')))
    self.assertFalse(os.path.exists(os.path.join(out, 'history.csv')))

  def test_flag_error(self):  # absl's parser.
    self.check(['--labels=bogus'], 'should be one of')

  def test_data_error(self):  # Raised while loading, after Keras started.
    d = testutil.mnist_dir(self.create_tempdir().full_path, 'truncated')
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512'],
               'truncated')

  def test_output_error(self):  # Raised after the data is loaded.
    d = testutil.mnist_dir(self.create_tempdir().full_path, None)
    blocker = self.create_tempfile().full_path
    self.check(['--dataset=mnist', f'--data_dir={d}', '--model=mlp_1x512',
                '--batch_size=4', f'--output_dir={blocker}/run'],
               'writable folder')


if __name__ == '__main__':
  absltest.main()
