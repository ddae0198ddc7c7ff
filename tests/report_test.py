"""The report on a small fixture set of result files."""

import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pandas as pd

import testutil
from zhang2017.reporting import figures
from zhang2017.training import memorization
from zhang2017.reporting import report_lib
from zhang2017.reporting import report_memorization
from zhang2017.reporting import report_theory
from zhang2017.training import results

FLAGS_DIR = os.path.join(testutil.ROOT, 'flags')


def _result(model, status, train, test, epochs, labels='true', p=0.0,
            train_size=None):
  return {
      'status': status, 'train_accuracy': train, 'test_accuracy': test,
      'epochs': epochs, 'epochs_to_fit': epochs if status == 'fitted' else None,
      'steps_per_epoch': 391, 'params': 1,
      'flags': {'dataset': 'cifar10', 'data_dir': None, 'model': model,
                'labels': labels, 'corrupt_prob': p, 'pixels': 'none',
                'random_crop': False, 'augment': False, 'weight_decay': 0.0,
                'dropout': 0.0, 'batch_size': 128, 'learning_rate': 0.01,
                'lr_decay': 0.95, 'momentum': 0.9, 'epochs': 100, 'seed': 0,
                'train_size': train_size, 'eval_batch_size': 1000,
                'mixed_precision': False, 'output_dir': 'x'},
      'corruption': {}, 'provenance': {
          'backend': 'jax', 'device': 'cpu: test', 'precision': 'float32',
          'dataset_source': 'cifar10-jpeg.zip (sha256 0)',
          'git_commit': 'abcdef0123'}}


def _put(root, exp, row, seed, result, accs=(0.5, 1.0)):
  d = os.path.join(root, exp, row, f'seed{seed}')
  os.makedirs(d)
  results.write_json(os.path.join(d, 'result.json'), result)
  results.write_csv(os.path.join(d, 'history.csv'), [
      {'epoch': i + 1, 'step': 391 * (i + 1), 'train_loss': 2.0 - i,
       'train_accuracy': a, 'test_accuracy': 0.3} for i, a in enumerate(accs)])


def _line(text, prefix):
  """The first line of `text` that starts with `prefix` (IndexError if none)."""
  return [l for l in text.splitlines() if l.startswith(prefix)][0]


class ReportTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    _put(self.root, 'table1', 'mlp_1x512', 0,
         _result('mlp_1x512', 'fitted', 1.0, 0.50, 30))
    _put(self.root, 'table1', 'mlp_1x512', 1,
         _result('mlp_1x512', 'fitted', 1.0, 0.52, 32))
    # A subset run must never appear as the paper row.
    _put(self.root, 'table1', 'mlp_3x512', 0,
         _result('mlp_3x512', 'fitted', 1.0, 0.40, 5, train_size=2000))
    _put(self.root, 'table1', 'mlp_3x512_random', 0, dict(
        _result('mlp_3x512', 'not_fitted', 0.5, 0.11, 10, labels='random'),
        flags={**_result('mlp_3x512', 'not_fitted', 0, 0, 10)['flags'],
               'labels': 'random', 'epochs': 10}))
    _put(self.root, 'appendix', 'alexnet_wd_random', 0, dict(
        _result('alexnet_small', 'diverged', 0.1, 0.1, 3, labels='random'),
        flags={**_result('alexnet_small', 'diverged', 0, 0, 3)['flags'],
               'labels': 'random', 'weight_decay': 0.0005}))
    _put(self.root, 'appendix', 'mlp_1x512_wd_random', 0, dict(
        _result('mlp_1x512', 'not_fitted', 0.97, 0.1, 100, labels='random'),
        flags={**_result('mlp_1x512', 'not_fitted', 0, 0, 100)['flags'],
               'labels': 'random', 'weight_decay': 0.0005}))
    _put(self.root, 'fig1bc', 'mlp_1x512_p05', 0,
         _result('mlp_1x512', 'fitted', 1.0, 0.3, 4, 'partial', 0.5),
         accs=(0.5, 0.9, 0.99, 1.0))

  def build(self):
    report_lib.build(self.root, FLAGS_DIR)
    with open(os.path.join(self.root, 'README.md')) as f:
      return f.read()

  def test_rows_numbers_and_missing_rows(self):
    text = self.build()
    row = [l for l in text.splitlines() if l.startswith('| MLP 1x512, crop no, wd no')]
    self.assertLen(row, 1)
    # Paper 100.00 / 50.51 beside ours: mean ± std over the two seeds.
    self.assertIn('| 100.00 | 100.00 ± 0.00 | 50.51 | 51.00 ± 1.41 | 2 | fitted in 31 '
                  'epochs |', row[0])
    self.assertIn('jax, cpu: test, float32, cifar10-jpeg.zip, abcdef0', row[0])
    subset = _line(text, '| MLP 3x512, crop no, wd no')
    self.assertIn('not run', subset)
    self.assertNotIn('40.00', subset)
    # The count at the top is the tables' own: subset and shortened runs
    # are not counted; p = 0 borrows table1/mlp_1x512.
    self.assertIn('Measured so far: Table 1 1 of 19 rows, appendix 2 of 6 '
                  'rows, Table 2 0 of 7 rows, Fig. 1a 0 of 5 curves, Fig. '
                  '1b/1c 2 of 33 points, Fig. 2b 0 of 2 curves, Section 5 0 '
                  'of 5 rows.', text)
    # A shortened run in a row's folder is not that row either.
    short = _line(text, '| MLP 3x512, fitting random labels')
    self.assertIn('not run', short)
    self.assertNotIn('11.00', short)
    # Table 2 prints the paper's top-5 beside ours (none run here).
    t2 = _line(text, '| true labels, aug yes, dropout yes, wd yes')
    self.assertIn('| 92.18 | not run | 77.84 | not run |  | not run | 93.92 '
                  '| not run |', t2)
    dropout = _line(text, '| random labels, dropout |')
    self.assertIn('| not reported | not run | 0.10 | not run | 96.15 |',
                  dropout)

  def test_diverged_and_not_fitted_read_as_the_paper_does(self):
    text = self.build()
    alex = _line(text, '| Alexnet, weight decay')
    # The paper's words for its AlexNet row; ours says what happened.
    self.assertIn('| failed to converge | not run | 1 | diverged (loss not '
                  'finite) at epoch 3 |', alex)
    mlp = _line(text, '| MLP 1x512, weight decay')
    self.assertIn('| 99.21 | 97.00 |', mlp)
    self.assertIn('not fitted in 100 epochs (97.00%)', mlp)
    self.assertNotIn('failed to converge', mlp)

  def test_same_run_is_borrowed_for_an_identical_configuration(self):
    text = self.build()
    # fig1bc p=0.0 for MLP 1x512 is the same computation as table1/mlp_1x512.
    pts = figures.fig1bc_points(report_lib.load_runs(self.root), FLAGS_DIR,
                                report_lib.row_runs)
    mlp = pts[pts['model'] == 'mlp_1x512'].groupby('p')[
        ['relative', 'test_error']].mean()
    # Two seeds of table1/mlp_1x512 (test 0.50 and 0.52) stand for p = 0.
    np.testing.assert_allclose(mlp.loc[0.0].tolist(), [1.0, 0.49],
                               rtol=1e-6, atol=1e-6)
    # p=0.5 reaches 98% at step 3 * 391 against 2 * 391 for p=0.
    np.testing.assert_allclose(mlp.loc[0.5].tolist(), [1.5, 0.7],
                               rtol=1e-6, atol=1e-6)
    self.assertIn('| mlp_1x512 | 0.0 | 2 | 1.00 ± 0.00 | 49.00 ± 1.41 | jax, '
                  'cpu: test, float32, cifar10-jpeg.zip, abcdef0 |', text)
    self.assertIn('| mlp_1x512 | 0.5 | 1 | 1.50 | 70.00 |', text)

  def test_curve_table_names_each_plotted_run(self):
    for exp, row, status, seed in (
        ('fig1a', 'shuffled_pixels', 'fitted', 0),
        ('fig1a', 'random_pixels', 'not_fitted', 0),
        ('fig1a', 'gaussian', 'diverged', 0),
        ('fig1a', 'shuffled_pixels', 'fitted', 1),
        ('table1', 'inception', 'fitted', 0)):
      flags_ = report_lib.parse_flagfile(
          os.path.join(FLAGS_DIR, exp, f'{row}.flags'))
      r = _result('inception_small', status, 0.9, 0.5 + seed / 10, 2)
      if exp == 'table1':
        del r['steps_per_epoch']  # An older result.
      _put(self.root, exp, row, seed,
           dict(r, flags=dict(flags_, output_dir='x', seed=seed)))
    text = self.build()
    # The plotted run is the first seed; 2 epochs of 391 steps.
    self.assertIn('| Fig. 1a | shuffled pixels | 782 (2 epochs) | 50.00 | jax, '
                  'cpu: test, float32, cifar10-jpeg.zip, abcdef0 |', text)
    self.assertIn('| Fig. 1a | random pixels | not fitted in 2 epochs '
                  '(90.00%) | 50.00 |', text)
    self.assertIn('| Fig. 1a | gaussian | diverged (loss not finite) at epoch '
                  '2 | 50.00 |', text)
    # Table 1's identical run stands for the true-label curves, and says so.
    self.assertIn('| Fig. 1a | true labels | 2 epochs | 50.00 | jax, cpu: '
                  'test, float32, cifar10-jpeg.zip, abcdef0 (same run as '
                  'table1/inception) |', text)
    self.assertIn('| Fig. 2b | Inception (BatchNorm) | 2 epochs |', text)
    self.assertIn('| Fig. 1a | random labels | not run | not run |  |', text)
    self.assertIn('| Fig. 2b | Inception w/o BatchNorm | not run |', text)
    self.assertIn('Fig. 1a 4 of 5 curves', text)

  def test_csv_columns_are_numeric(self):
    self.build()
    df = pd.read_csv(os.path.join(self.root, 'table1.csv'))
    for c in ('paper_train', 'paper_test', 'train_mean', 'train_std',
              'test_mean', 'test_std', 'seeds'):
      self.assertTrue(pd.api.types.is_numeric_dtype(df[c]), c)
    row = df.set_index('row').loc['mlp_1x512']
    np.testing.assert_allclose(
        [row['paper_test'], row['test_mean'], row['test_std']],
        [50.51, 51.0, 1.41], rtol=1e-6, atol=1e-6)
    self.assertTrue(np.isnan(df.set_index('row').loc['inception', 'test_mean']))
    app = pd.read_csv(os.path.join(self.root, 'appendix.csv')).set_index('row')
    self.assertTrue(np.isnan(app.loc['alexnet_wd_random', 'paper_train']))
    self.assertEqual(app.loc['alexnet_wd_random', 'paper_note'],
                     'failed to converge')
    self.assertEqual(app.loc['inception_crop_random', 'train_metric'],
                     'running')

  def test_report_imports_neither_tensorflow_nor_keras(self):
    code = ('import sys; from zhang2017 import report; '
            'print(sorted(m for m in ("tensorflow", "keras", "jax") '
            'if m in sys.modules))')
    p = subprocess.run([sys.executable, '-c', code], cwd=testutil.ROOT,
                       capture_output=True, text=True, timeout=120)
    self.assertEqual(p.returncode, 0, p.stderr)
    self.assertEqual(p.stdout.strip(), '[]')

  def test_outputs_exist_and_are_reproducible(self):
    self.build()
    names = ['README.md', 'table1.csv', 'appendix.csv', 'table2.csv',
             'fig1a.png', 'fig1b.png', 'fig1c.png', 'fig2b.png',
             'learning_order.png', 'learning_order.csv']
    first = {n: open(os.path.join(self.root, n), 'rb').read() for n in names}
    self.build()
    for n in names:
      with open(os.path.join(self.root, n), 'rb') as f:
        self.assertEqual(f.read(), first[n], n)
    with open(os.path.join(self.root, 'table1.csv')) as f:
      self.assertLen(f.readlines(), 20)


# A learning-order run of ten examples over four epochs: six clean, four
# corrupted. By hand: clean fitted by epoch 1, 2, 3: 2/6, 4/6, 5/6 (half by
# epoch 2, when 1 of 4 corrupted is fitted); medians 2 (clean: 1 1 2 2 3 never)
# and 3.5 (corrupted: 2 3 4 never); mean forgetting 0.5 and 1.5.
EXAMPLES = {
    'first_fitted_epoch': np.array([2, 1, 2, 3, 0, 1, 2, 4, 0, 3], np.uint8),
    'forgetting_events': np.array([0, 0, 1, 0, 2, 0, 1, 2, 0, 3], np.uint8),
    'label_changed': np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1], np.uint8),
    'margin': np.zeros(10, np.float16), 'evaluations': np.array(4, np.uint8)}


class SittingLogTest(absltest.TestCase):

  def test_old_checkpoint_new_run_and_the_provenance_cell(self):
    self.assertEqual(results.earlier_sittings(None), [])
    old = results.earlier_sittings(
        {'history': [{}] * 27, 'commits': ['0f88015']})
    self.assertEqual((old[0]['device'], old[0]['first_epoch'],
                      old[0]['last_epoch']), (None, 1, 27))
    self.assertIn('0f88015', old[0]['note'])
    log = [{'git_commit': 'a', 'device': 'cpu: A', 'first_epoch': 1,
            'last_epoch': 3}]
    self.assertEqual(results.earlier_sittings({'history': [{}] * 3,
                                               'sitting_log': log}), log)
    r = _result('mlp_1x512', 'fitted', 1.0, 0.5, 9)
    self.assertIn('jax, cpu: test, float32', results.provenance_cell(r))
    r['provenance']['sittings'] = 2
    self.assertIn('jax, cpu: test (last of 2 sittings), float32',
                  results.provenance_cell(r))
    r['provenance']['sitting_log'] = old + log + [dict(log[0], device='cpu: B')]
    self.assertIn('jax, unrecorded + cpu: A + cpu: B, float32',
                  results.provenance_cell(r))


class LearningOrderTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    _put(self.root, 'learning_order', 'mlp_1x512_p02', 0,
         _result('mlp_1x512', 'not_fitted', 0.8, 0.4, 4, 'partial', 0.2),
         accs=(0.3, 0.5, 0.7, 0.8))
    results.atomic_savez(os.path.join(self.root, 'learning_order',
                                      'mlp_1x512_p02', 'seed0',
                                      memorization.FILE), **EXAMPLES)
    # Trained before the records: listed, not estimated.
    _put(self.root, 'fig1bc', 'mlp_1x512_p05', 1,
         _result('mlp_1x512', 'fitted', 1.0, 0.3, 4, 'partial', 0.5))

  def test_hand_computed_table_and_runs_without_records(self):
    np.testing.assert_allclose(report_memorization.fitted_by_epoch(
        EXAMPLES['first_fitted_epoch'][:6], 4), [2 / 6, 4 / 6, 5 / 6, 5 / 6])
    report_lib.build(self.root, FLAGS_DIR)
    with open(os.path.join(self.root, 'README.md')) as f:
      text = f.read()
    self.assertIn('| mlp_1x512 | 0.2 | learning_order/mlp_1x512_p02/seed0 | 4 '
                  '| 2 | 3.5 | 0.50 | 1.50 | 2 | 25.0 | jax, ', text)
    self.assertIn('On 1 of 1 runs the corrupted examples are fitted later '
                  'than the clean ones (median first-fitted epoch), and on 1 '
                  'of 1 they are forgotten more often (mean forgetting '
                  'events); when half the clean examples are fitted, 25.0% of '
                  'the corrupted ones are.', text)
    self.assertIn('fig1bc/mlp_1x512_p05 (seed 1).', _line(
        text, 'Runs with partially corrupted labels without examples.npz or'))
    # A learning-order run never stands for a paper point (Fig. 1b p = 0.2
    # has no run of its own here).
    self.assertNotIn('| mlp_1x512 | 0.2 | 1 |', text)
    pts = figures.fig1bc_points(report_lib.load_runs(self.root), FLAGS_DIR,
                                report_lib.row_runs)
    self.assertEqual(sorted(pts['p']), [0.5])
    df = pd.read_csv(os.path.join(self.root, 'learning_order.csv'))
    self.assertEqual(df[['clean', 'corrupted', 'half_clean_epoch']].values
                     .tolist(), [[6, 4, 2]])

  def test_no_records_yet(self):
    os.remove(os.path.join(self.root, 'learning_order', 'mlp_1x512_p02',
                           'seed0', memorization.FILE))
    text = '\n'.join(report_memorization.sections(
        report_lib.load_runs(self.root), self.root))
    self.assertIn('No run has examples.npz yet.', text)
    self.assertIn(': fig1bc/mlp_1x512_p05 (seed 1); learning_order/'
                  'mlp_1x512_p02 (seed 0).', text)
    self.assertNotIn('| model | p | run |', text)  # No empty table.


def _kernel(dataset, prep, error, rule='median', filters=None, l2=0.0,
            train_size=None):
  r = _result('none', 'fitted', 1.0, 1 - error, 0)
  r.update({'test_error': error, 'rkhs_norm': 100.0, 'gamma': 0.5,
            'max_abs_residual': 1e-5, 'train_error_sample': 0.0,
            'peak_memory_gb': 9.0, 'flags': {
                'dataset': dataset, 'preprocessing': prep, 'gamma_rule': rule,
                'gamma': 0.5, 'l2': l2, 'train_size': train_size,
                'filters': filters}})
  r['provenance']['wall_seconds'] = 60.0
  if filters:
    r['filters'] = filters
  return r


class TheoryReportTest(absltest.TestCase):

  def test_section5_rows_and_the_filter_curve(self):
    root = self.create_tempdir().full_path
    rf = lambda *a, **k: _kernel('cifar10', 'random_features', *a, **k)
    for name, r in [
        ('kernel-px', _kernel('cifar10', 'pixels', 0.5)),
        ('kernel-rf256', rf(0.40, filters=256)),
        ('kernel-rf1024', rf(0.30, filters=1024)),
        ('kernel-rf1024-l2', rf(0.29, filters=1024, l2=0.1)),
        ('kernel-rf4096-n10', rf(0.6, filters=4096, train_size=10)),
        ('kernel-rf2048-g1', rf(0.2, 'fixed', filters=2048))]:
      os.makedirs(os.path.join(root, 'theory', name))
      results.write_json(os.path.join(root, 'theory', name, 'result.json'), r)
    text = '\n'.join(report_theory.sections(root))
    # A random-feature row needs the paper's 32,000 filters; fewer go on
    # the filter curve only.
    for row in (' (32,000', ', l2'):
      self.assertIn('| not run at 32,000 filters', _line(
          text, f'| CIFAR-10, random convolutional features{row}'))
    self.assertNotIn('Without a ridge', text)  # No 32,000-filter run yet.
    # The headline: the median rule first, then the most filters; never a
    # subset.
    for name, r in [('kernel-rf32000-g1', rf(0.2, 'fixed', filters=32000)),
                    ('kernel-rf32000', rf(0.17, filters=32000)),
                    ('kernel-rf32000-n10', rf(0.1, filters=32000,
                                              train_size=10))]:
      os.makedirs(os.path.join(root, 'theory', name))
      results.write_json(os.path.join(root, 'theory', name, 'result.json'), r)
    text = '\n'.join(report_theory.sections(root))
    self.assertIn('| 17.0 | 17.00 (32,000 filters) |', _line(
        text, '| CIFAR-10, random convolutional features (32,000'))
    self.assertIn('| 46.0 | 50.00 |', _line(text, '| CIFAR-10, Gaussian'))
    # The gap sentence: the headline against the fewest filters of its
    # bandwidth rule (not the fixed-gamma runs).
    self.assertIn('Without a ridge (gaussian kernel, median bandwidth), test '
                  'error goes from 40.00% (256 filters) to 17.00% (32,000): '
                  '23.00 points over 125 times the filters; the paper\'s 17% '
                  'equals ours.\n', text)
    self.assertNotIn('The gap may lie', text)
    os.remove(os.path.join(root, 'theory', 'kernel-rf32000', 'result.json'))
    os.rmdir(os.path.join(root, 'theory', 'kernel-rf32000'))
    text = '\n'.join(report_theory.sections(root))
    self.assertIn('(gaussian kernel, fixed bandwidth), test error goes from '
                  '20.00% (2,048 filters) to 20.00% (32,000): 0.00 points over '
                  "16 times the filters; the paper's 17% is 3.00 points below "
                  'ours. The gap may lie', text)
    self.assertIn('ours gaussian with the fixed rule)', text)
    self.assertIn('| not run |', _line(text, '| MNIST, raw pixels'))
    curve = [l.split(' | ')[-1] for l in text.splitlines()
             if l.startswith('| 256 |') or l.startswith('| 1,024 |')
             or l.startswith('| 2,048 |') or l.startswith('| 4,096 |')]
    self.assertEqual(curve, ['kernel-rf256 |', 'kernel-rf1024 |',
                             'kernel-rf1024-l2 |', 'kernel-rf2048-g1 |'])


if __name__ == '__main__':
  absltest.main()
