"""Every flagfile parses, names a valid configuration and quotes the paper."""

import dataclasses
import glob
import json
import os
import re
import unittest
from unittest import mock

from absl import flags
from absl.testing import absltest

import testutil
from zhang2017 import cli
from zhang2017.training import config as config_lib
from zhang2017.reporting import paper
from zhang2017.reporting import report_lib

FLAGS_DIR = os.path.join(testutil.ROOT, 'flags')


class FlagfilesTest(absltest.TestCase):

  def test_one_flagfile_per_paper_row(self):
    for exp, rows in paper.EXPERIMENTS.items():
      files = sorted(os.path.basename(f)[:-6] for f in glob.glob(
          os.path.join(FLAGS_DIR, exp, '*.flags')))
      self.assertEqual(files, sorted(r.id for r in rows), exp)
    self.assertLen(paper.TABLE1, 19)
    self.assertLen(paper.APPENDIX, 6)
    self.assertLen(paper.TABLE2, 7)
    self.assertLen(paper.FIG1BC, 33)

  def test_every_flagfile_is_a_valid_config(self):
    for path in glob.glob(os.path.join(FLAGS_DIR, '*', '*.flags')):
      with self.subTest(path):
        flags_ = report_lib.parse_flagfile(path)
        config_lib.validate(config_lib.Config(**{
            k: v for k, v in flags_.items()}))

  def test_headers_quote_the_papers_numbers(self):
    for exp in ('table1', 'appendix', 'table2'):
      for row in paper.EXPERIMENTS[exp]:
        with open(os.path.join(FLAGS_DIR, exp, f'{row.id}.flags')) as f:
          header = ''.join(l for l in f if l.startswith('#'))
        self.assertIn(row.label, header)
        for v in row.paper.values():
          if v is not None:
            self.assertRegex(header, re.escape(str(v)))

  def test_every_flagfile_encodes_its_row(self):
    """The flags say what the header's row says: model, labels, pixels,
    crop, augmentation, weight decay, dropout (read from the words)."""
    models = [('Inception w/o BatchNorm', 'inception_small_nobn'),
              ('Inception', 'inception_small'), ('Alexnet', 'alexnet_small'),
              ('MLP 1x512', 'mlp_1x512'), ('MLP 3x512', 'mlp_3x512')]
    paths = sorted(glob.glob(os.path.join(FLAGS_DIR, '*', '*.flags')))
    self.assertLen(paths, 72)
    for path in paths:
      exp = os.path.basename(os.path.dirname(path))
      with open(path) as f:
        head = f.readline()
      label = re.search(r'(?:row|curve|point): (.*)$', head).group(1)
      f = report_lib.parse_flagfile(path)
      has = lambda word: re.search(word, label) is not None
      with self.subTest(path):
        if exp == 'table2':
          model = 'inception_v3'
        elif exp == 'fig1a':  # "(training loss vs steps, Inception ...)"
          model = 'inception_small'
        elif exp == 'fig1bc':
          model, p = re.match(r'(\w+), p=([\d.]+)', label).groups()
          p = float(p)
          want = 'true' if p == 0 else 'random' if p == 1 else 'partial'
          self.assertEqual(f['labels'], want)
          if want == 'partial':
            self.assertEqual(f['corrupt_prob'], p)
        else:
          model = next(m for name, m in models if label.startswith(name))
        self.assertEqual(f['model'], model)
        if exp != 'fig1bc':
          random_labels = exp == 'appendix' or has('random labels')
          self.assertEqual(f['labels'], 'random' if random_labels else 'true')
        pixels = next((p for p in ('shuffled', 'random', 'gaussian')
                       if has(f'{p} pixels|^{p}$')), 'none')
        self.assertEqual(f['pixels'], pixels)
        self.assertEqual(f['random_crop'],
                         has('crop yes|random cropping'))
        self.assertEqual(f['augment'], has('aug yes|augmentation'))
        self.assertEqual(f['weight_decay'] > 0,
                         has('wd yes|weight decay|\\+ wd'))
        self.assertEqual(f['dropout'] > 0, has('dropout yes|dropout( \\+|$)'))

  @unittest.skipIf(testutil.data_dir() is None, 'real CIFAR-10 not found')
  def test_the_binary_runs_a_flagfile(self):
    ff = os.path.join(FLAGS_DIR, 'table1', 'mlp_1x512_random.flags')
    out = self.create_tempdir().full_path
    p = testutil.run_module(
        'zhang2017.train', f'--flagfile={ff}', '--train_size=300',
        '--epochs=1', f'--output_dir={out}',
        env={'ZHANG2017_DATA_DIR': testutil.data_dir(),
             'KERAS_BACKEND': 'jax'})  # Starts faster than TensorFlow.
    self.assertEqual(p.returncode, 0, p.stderr[-1000:])
    with open(os.path.join(out, 'result.json')) as f:
      flags_ = json.load(f)['flags']
    expected = report_lib.parse_flagfile(ff)
    for k in ('model', 'labels', 'dataset', 'learning_rate', 'lr_decay'):
      self.assertEqual(flags_[k], expected[k])


class OneSourceTest(absltest.TestCase):

  def test_a_field_added_to_config_is_a_flag_everywhere(self):
    # pylint: disable=protected-access
    @dataclasses.dataclass(frozen=True)
    class Extended(config_lib.Config):
      label_smoothing: float = config_lib._field(0.0, 'Smooths the labels.')

    ff = self.create_tempfile(
        content='--model=mlp_1x512\n--label_smoothing=0.1\n').full_path
    with mock.patch.object(config_lib, 'Config', Extended):
      fv = flags.FlagValues()
      cli.define_config_flags(fv)
      self.assertIn('Smooths the labels.', fv.get_help())
      self.assertEqual(cli.parse_flagfile(ff).label_smoothing, 0.1)
      self.assertEqual(
          cli.config_from_argv(['train', '--label_smoothing=0.2'])
          .label_smoothing, 0.2)

  def test_the_binary_help_lists_every_field(self):
    p = testutil.run_module('zhang2017.train', '--help',
                            env={'KERAS_BACKEND': 'jax'})
    for f in dataclasses.fields(config_lib.Config):
      self.assertIn(f'--{f.name}', p.stdout.replace('--[no]', '--'), f.name)


if __name__ == '__main__':
  absltest.main()
