"""Tables, CSVs and figures from result files, beside the paper's numbers.

Nothing here is typed by hand: every number comes from a result.json (ours)
or from `paper.py` (the paper's). `load_runs` reads every run into one pandas
DataFrame; the tables, the CSVs, the seed aggregation (mean ± std) and the
figures come from it. A row without a complete, full-size run says "not run";
a run on a --train_size or --test_size subset is never shown as a paper row.
Imports neither TensorFlow nor Keras.
"""

import glob
import json
import os

import numpy as np
import pandas as pd

from zhang2017 import cli
from zhang2017.reporting import figures
from zhang2017.reporting import paper
from zhang2017.reporting import report_memorization
from zhang2017.reporting import report_theory
from zhang2017.training import results

# Flags a paper row's run may differ in from the row's flagfile: where it
# runs and its seed (seeds are pooled), how evaluation is batched, and the
# precision (shown in each row's provenance; README "Decisions"). Any other
# difference (epochs, a subset, crop, ...) keeps a run out of the row.
_KEY_IGNORE = ('output_dir', 'data_dir', 'eval_batch_size', 'seed',
               'steps_per_call', 'mixed_precision')
COLUMNS = ['experiment', 'row', 'seed', 'run_dir', 'status', 'train_accuracy',
           'test_accuracy', 'train_accuracy_running', 'train_top5',
           'test_top5', 'epochs',
           'epochs_to_fit', 'steps_per_epoch', 'full_size', 'flags',
           'provenance']


def load_runs(results_dir):
  """Every complete run under <experiment>/<row>/seed<k>/: one row each.

  Columns: experiment, row, seed, run_dir, status, the accuracies (fractions;
  NaN where a result lacks one), epochs, epochs_to_fit, steps_per_epoch,
  full_size (no train or test subset), flags (dict), provenance (one line).
  """
  rows = []
  pattern = os.path.join(results_dir, '*', '*', 'seed*', results.RESULT)
  for path in sorted(glob.glob(pattern)):
    run_dir = os.path.dirname(path)
    exp, row, seed = run_dir.split(os.sep)[-3:]
    with open(path) as f:
      r = json.load(f)
    rows.append({
        'experiment': exp, 'row': row, 'seed': int(seed[len('seed'):]),
        'run_dir': run_dir, 'status': r['status'],
        'train_accuracy': r['train_accuracy'],
        'test_accuracy': r['test_accuracy'],
        'train_accuracy_running': r.get('train_accuracy_running'),
        'train_top5': r.get('train_top5'), 'test_top5': r.get('test_top5'),
        'epochs': r['epochs'], 'epochs_to_fit': r['epochs_to_fit'],
        'steps_per_epoch': r.get('steps_per_epoch'),
        'full_size': (r['flags'].get('train_size') is None
                      and r['flags'].get('test_size') is None),
        'flags': r['flags'], 'provenance': results.provenance_cell(r)})
  df = pd.DataFrame(rows, columns=COLUMNS)
  for c in ('train_accuracy', 'test_accuracy', 'train_accuracy_running',
            'train_top5', 'test_top5'):
    df[c] = df[c].astype(float)
  return df


def parse_flagfile(path):
  """The full configuration a flagfile gives (absl's parser): a flat dict."""
  cfg = cli.parse_flagfile(path)
  return {**cfg.to_dict(), 'learning_rate': cfg.lr}


def _same_run(flags_, wanted):
  return all(flags_.get(k) == v for k, v in wanted.items()
             if k not in _KEY_IGNORE)


def row_runs(runs, experiment, row_id, flags_dir):
  """A row's full-size runs: its own, else identical runs of other rows
  (never the learning-order runs, which stand beside the paper's points).

  Returns:
    (DataFrame of runs, note) where note names the borrowed row.
  """
  full = runs[runs['full_size'].astype(bool)
              & (runs['experiment'] != report_memorization.EXPERIMENT)]
  ff = os.path.join(flags_dir, experiment, f'{row_id}.flags')
  if not os.path.exists(ff):
    return full[:0], ''
  wanted = parse_flagfile(ff)
  same = full[full['flags'].map(lambda f: _same_run(f, wanted)).astype(bool)]
  own = same[(same['experiment'] == experiment) & (same['row'] == row_id)]
  if len(own):
    return own, ''
  if not len(same):
    return same, ''
  exp, row = sorted(zip(same['experiment'], same['row']))[0]
  return (same[(same['experiment'] == exp) & (same['row'] == row)],
          f'same run as {exp}/{row}')


def _paper_value(row, key):
  """(number or NaN, note): strings and None become a note."""
  v = row.paper.get(key, '')
  if v is None:
    return np.nan, 'not reported'
  if isinstance(v, str):
    return np.nan, v
  return float(v), ''


def _train_metric(experiment, flags_):
  """The appendix's crop and augmentation rows are the running mini-batch
  accuracy on the augmented samples (PAPER.md); everything else is the
  inference-mode accuracy on the whole training set."""
  if experiment == 'appendix' and (flags_.get('random_crop') or
                                   flags_.get('augment')):
    return 'train_accuracy_running'
  return 'train_accuracy'


def table(runs, experiment, flags_dir):
  """One row per paper row: the paper's numbers beside ours (percentages)."""
  out = []
  for row in paper.EXPERIMENTS[experiment]:
    rs, note = row_runs(runs, experiment, row.id, flags_dir)
    ok = rs[rs['status'] != 'diverged']
    ff = os.path.join(flags_dir, experiment, f'{row.id}.flags')
    metric = _train_metric(experiment, parse_flagfile(ff)
                           if os.path.exists(ff) else {})
    paper_train, train_note = _paper_value(row, 'train')
    paper_test, test_note = _paper_value(row, 'test')
    train, test = 100 * ok[metric], 100 * ok['test_accuracy']
    top5 = {}
    for split in ('train', 'test') if experiment == 'table2' else ():
      top5[f'paper_{split}_top5'] = _paper_value(row, f'{split}_top5')[0]
      top5[f'{split}_top5_mean'] = 100 * ok[f'{split}_top5'].mean()
      top5[f'{split}_top5_std'] = 100 * ok[f'{split}_top5'].std()
    out.append({
        'row': row.id, 'label': row.label,
        'paper_train': paper_train, 'paper_test': paper_test,
        'paper_note': '; '.join(n for n in (train_note, test_note) if n),
        'train_mean': train.mean(), 'train_std': train.std(),
        'test_mean': test.mean(), 'test_std': test.std(),
        **top5,
        'seeds': len(rs),
        'train_metric': 'running' if metric != 'train_accuracy' else
                        'inference',
        'status': figures.status_cell(rs) if len(rs) else 'not run',
        'provenance': ('; '.join(dict.fromkeys(rs['provenance']))
                       + (f' ({note})' if note else '')) if len(rs) else '',
    })
  return pd.DataFrame(out)


def _cell(mean, std, seeds):
  if seeds == 0 or np.isnan(mean):
    return 'not run'
  return f'{mean:.2f}' + (f' ± {std:.2f}' if seeds > 1 else '')


def _paper_cell(value, note):
  return note if np.isnan(value) and note else (
      '' if np.isnan(value) else f'{value:.2f}')


def _markdown(df, with_test=True, with_top5=False):
  head = ['row', 'paper train', 'ours train']
  if with_test:
    head += ['paper test', 'ours test']
  if with_top5:
    head += ['paper train top-5', 'ours', 'paper test top-5', 'ours']
  head += ['seeds', 'status', 'how ours was obtained']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for _, r in df.iterrows():
    note_train = r['paper_note'] if np.isnan(r['paper_train']) else ''
    cells = [r['label'], _paper_cell(r['paper_train'], note_train),
             _cell(r['train_mean'], r['train_std'], r['seeds'])]
    if with_test:
      cells += [_paper_cell(r['paper_test'], ''),
                _cell(r['test_mean'], r['test_std'], r['seeds'])]
    if with_top5:
      for split in ('train', 'test'):
        cells += [_paper_cell(r[f'paper_{split}_top5'], ''),
                  _cell(r[f'{split}_top5_mean'], r[f'{split}_top5_std'],
                        r['seeds'])]
    cells += [str(r['seeds']), r['status'], r['provenance']]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


TABLES = (('table1', 'Table 1: CIFAR-10 training and test accuracy (%)', True),
          ('appendix', 'Appendix: random labels with explicit regularizers '
           '(training accuracy, %)', False),
          ('table2', 'Table 2: ImageNet, Inception V3 (top-1 and top-5, %)',
           True))
NOTES = {
    'appendix': 'The random cropping and augmentation rows show the running '
                'mini-batch accuracy over the last epoch in training mode, on '
                'the cropped/augmented samples, as the paper measured them; '
                'the other rows show inference-mode accuracy on the whole '
                'training set. "not fitted in N epochs (x%)": the run reached '
                'the epoch limit at x% training accuracy.\n',
}


def coverage(runs, flags_dir, results_dir):
  """One markdown line: how many of each experiment's rows, curves and
  points have a complete full-size run (the report's own count)."""
  parts = []
  for exp, (title, unit) in {
      'table1': ('Table 1', 'rows'), 'appendix': ('appendix', 'rows'),
      'table2': ('Table 2', 'rows'), 'fig1a': ('Fig. 1a', 'curves'),
      'fig1bc': ('Fig. 1b/1c', 'points'), 'fig2b': ('Fig. 2b', 'curves')}.items():
    rows = paper.EXPERIMENTS[exp]
    n = sum(len(row_runs(runs, exp, r.id, flags_dir)[0]) > 0 for r in rows)
    parts.append(f'{title} {n} of {len(rows)} {unit}')
  n, total = report_theory.section5_coverage(results_dir)
  parts.append(f'Section 5 {n} of {total} rows')
  return 'Measured so far: ' + ', '.join(parts) + '.\n'


def build(results_dir, flags_dir):
  """Writes README.md, <table>.csv and the PNGs into results_dir."""
  runs = load_runs(results_dir)
  sections = [
      '# Results\n',
      'Generated by `python -m zhang2017.report` from the result files below '
      'this folder; do not edit. Each row: the paper\'s number, ours (mean ± '
      'std over seeds), the number of seeds, whether training reached 100% '
      'training accuracy (status), and how ours was obtained (backend, '
      'device, precision, dataset copy, commit). "not run" means no complete '
      'full-size run exists yet.\n',
      'Our CIFAR-10 is the JPEG copy in `../shared/data` (quality 75, see its '
      'README): clean test accuracies run a little below the original '
      'CIFAR-10; memorization is unaffected in kind.\n',
      coverage(runs, flags_dir, results_dir),
  ]
  for name, title, with_test in TABLES:
    df = table(runs, name, flags_dir)
    results.atomic_write(os.path.join(results_dir, f'{name}.csv'), df.to_csv(
        index=False, float_format='%.2f', lineterminator='\n'))
    sections += [f'## {title}\n',
                 _markdown(df, with_test, name == 'table2') + '\n']
    if name in NOTES:
      sections.append(NOTES[name])
    sections.append(f'CSV: [{name}.csv]({name}.csv)\n')
  pts = figures.make_figures(runs, results_dir, flags_dir, row_runs)
  fig_rows = ['| model | p | seeds | time to fit (relative) | test error (%) '
              '| how ours was obtained |', '|---|---|---|---|---|---|']
  for (model, p), g in pts.groupby(['model', 'p'], sort=False):
    rel = g['relative'].dropna()
    fig_rows.append(
        f'| {model} | {p:.1f} | {len(g)} | '
        f'{_cell(rel.mean(), rel.std(), len(rel)) if len(rel) else "not reached"}'
        f' | {_cell(100 * g["test_error"].mean(), 100 * g["test_error"].std(), len(g))}'
        f' | {"; ".join(dict.fromkeys(g["provenance"]))} |')
  sections += [
      '## Figures\n',
      '![Fig. 1a](fig1a.png) ![Fig. 1b](fig1b.png)\n',
      '![Fig. 1c](fig1c.png) ![Fig. 2b](fig2b.png)\n',
      'The curves\' runs (the paper shows curves, not numbers):\n',
      figures.curve_table(runs, flags_dir, row_runs),
      f'Figure 1b/1c points (time to fit: first step with inference-mode '
      f'training accuracy >= {figures.FIT_THRESHOLD:.0%}, relative to p = 0; '
      'the paper shows curves, not numbers):\n',
      '\n'.join(fig_rows) + '\n',
  ]
  sections += report_memorization.sections(runs, results_dir)
  sections += report_theory.sections(results_dir)
  gpu = sorted(glob.glob(os.path.join(results_dir, 'gpu', '*', 'README.md')))
  if gpu:
    sections += ['## Accelerator sessions\n', '\n'.join(
        f'- [{os.path.relpath(os.path.dirname(g), results_dir)}]'
        f'({os.path.relpath(g, results_dir)})' for g in gpu) + '\n']
  results.atomic_write(os.path.join(results_dir, 'README.md'),
                       '\n'.join(sections))
