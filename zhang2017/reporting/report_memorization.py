"""The report's learning-order section: the per-example records
(`examples.npz`, `memorization.py`) of runs with partially corrupted labels,
as a figure (learning_order.png), a table and learning_order.csv.

"Fitted by epoch e" means first_fitted_epoch in 1..e: right at epoch e and
at every evaluation after it. Runs without examples.npz (trained before the
records existed) are listed, not estimated.
"""

import os

import numpy as np
import pandas as pd

from zhang2017.reporting import figures
from zhang2017.training import memorization
from zhang2017.training import results

# Runs made for their per-example records, beside the paper's points:
# results/learning_order/<fig1bc row>/seed<k>/ (never a paper row's run).
EXPERIMENT = 'learning_order'
FIGURE = 'learning_order.png'


def partial_runs(runs):
  """Full-size runs with partially corrupted labels (0 < p < 1)."""
  def partial(f):
    return f.get('labels') == 'partial' and 0 < f.get('corrupt_prob', 0) < 1
  return runs[runs['full_size'].astype(bool)
              & runs['flags'].map(partial).astype(bool)]


def fitted_by_epoch(first_fitted, evaluations):
  """Fraction of the examples fitted by epoch e, for e = 1 .. evaluations."""
  counts = np.bincount(first_fitted.astype(np.int64),
                       minlength=evaluations + 1)[1:evaluations + 1]
  return np.cumsum(counts) / max(len(first_fitted), 1)


def _median_epoch(first_fitted):
  """Median first-fitted epoch, an example never fitted counting as later
  than every epoch (inf when more than half are not fitted)."""
  return float(np.median(np.where(first_fitted > 0, first_fitted, np.inf)))


def summary(ex):
  """One run's learning-order numbers from its examples.npz arrays."""
  ff, forget = ex['first_fitted_epoch'], ex['forgetting_events']
  changed, e = ex['label_changed'].astype(bool), int(ex['evaluations'])
  clean, corrupt = (fitted_by_epoch(ff[m], e) for m in (~changed, changed))
  half = np.flatnonzero(clean >= 0.5)
  return {
      'epochs': e, 'clean': int((~changed).sum()),
      'corrupted': int(changed.sum()),
      'median_clean': _median_epoch(ff[~changed]),
      'median_corrupted': _median_epoch(ff[changed]),
      'forgetting_clean': float(forget[~changed].mean()),
      'forgetting_corrupted': float(forget[changed].mean()),
      # The first epoch by which half the clean examples are fitted, and the
      # share of corrupted examples fitted by then.
      'half_clean_epoch': int(half[0]) + 1 if len(half) else None,
      'corrupted_at_half': float(corrupt[half[0]]) if len(half) else None,
      'curves': (clean, corrupt)}


def _records(runs):
  """(table rows with the curves, runs without examples.npz or without its
  corruption mask)."""
  rows, missing = [], []
  for _, r in partial_runs(runs).iterrows():
    path = os.path.join(r['run_dir'], memorization.FILE)
    ex = memorization.load(path) if os.path.exists(path) else {}
    if 'label_changed' not in ex:  # No file, or no mask (tfds ImageNet).
      missing.append(r)
      continue
    rows.append({'model': r['flags']['model'],
                 'p': float(r['flags']['corrupt_prob']), 'seed': r['seed'],
                 'run': f'{r["experiment"]}/{r["row"]}/seed{r["seed"]}',
                 **summary(ex),
                 'provenance': r['provenance']})
  rows.sort(key=lambda x: (x['model'], x['p'], x['seed'], x['run']))
  return rows, missing


def _epoch(x):
  return 'not fitted' if np.isinf(x) else f'{x:g}'


def _draw(rows):
  def draw(ax):
    keys = list(dict.fromkeys((r['model'], r['p']) for r in rows))
    labelled = set()
    for r in rows:
      color = f'C{keys.index((r["model"], r["p"]))}'
      name = f'{r["model"]} p={r["p"]:.1f}'
      for curve, style, kind in zip(r['curves'], ('-', '--'),
                                    ('clean', 'corrupted')):
        label = None if (name, kind) in labelled else f'{name} {kind}'
        labelled.add((name, kind))
        ax.plot(np.arange(1, len(curve) + 1), 100 * curve, style,
                color=color, label=label)
    if rows:
      ax.legend(fontsize=6)
    else:
      ax.text(0.5, 0.5, 'no results yet', ha='center', transform=ax.transAxes)
    ax.set_xlabel('epoch')
    ax.set_ylabel('fitted by this epoch (%)')
    ax.set_title('Learning order: clean (solid) and corrupted (dashed) '
                 'examples', fontsize=8)
  return draw


def _finding(rows):
  """One data-driven sentence on what the runs show."""
  later = sum(r['median_corrupted'] > r['median_clean'] for r in rows)
  forgot = sum(r['forgetting_corrupted'] > r['forgetting_clean'] for r in rows)
  shares = [100 * r['corrupted_at_half'] for r in rows
            if r['corrupted_at_half'] is not None]
  text = (f'On {later} of {len(rows)} runs the corrupted examples are fitted '
          'later than the clean ones (median first-fitted epoch), and on '
          f'{forgot} of {len(rows)} they are forgotten more often (mean '
          'forgetting events)')
  if shares:
    spread = f'{min(shares):.1f}' + (f'-{max(shares):.1f}'
                                     if max(shares) > min(shares) else '')
    text += (f'; when half the clean examples are fitted, {spread}% of the '
             'corrupted ones are')
  return text + '.'


def sections(runs, results_dir):
  """Markdown lines; writes learning_order.png and learning_order.csv."""
  rows, missing = _records(runs)
  figures.plot(os.path.join(results_dir, FIGURE), _draw(rows))
  df = pd.DataFrame([{k: v for k, v in r.items() if k != 'curves'}
                     for r in rows], columns=[
      'model', 'p', 'seed', 'run', 'epochs', 'clean', 'corrupted',
      'median_clean', 'median_corrupted', 'forgetting_clean',
      'forgetting_corrupted', 'half_clean_epoch', 'corrupted_at_half',
      'provenance'])
  results.atomic_write(os.path.join(results_dir, 'learning_order.csv'),
                       df.to_csv(index=False, float_format='%.4f',
                                 lineterminator='\n'))
  lines = ['| model | p | run | epochs | median first-fitted epoch: clean | '
           'corrupted | mean forgetting events: clean | corrupted | half the '
           'clean fitted by epoch | corrupted fitted then (%) | how it was '
           'obtained |', '|' + '---|' * 11]
  for r in rows:
    at_half = r['corrupted_at_half']
    lines.append(
        f'| {r["model"]} | {r["p"]:.1f} | {r["run"]} | {r["epochs"]} | '
        f'{_epoch(r["median_clean"])} | {_epoch(r["median_corrupted"])} | '
        f'{r["forgetting_clean"]:.2f} | {r["forgetting_corrupted"]:.2f} | '
        f'{r["half_clean_epoch"] or "not reached"} | '
        f'{"" if at_half is None else f"{100 * at_half:.1f}"} | '
        f'{r["provenance"]} |')
  without = {}
  for r in missing:
    without.setdefault(f'{r["experiment"]}/{r["row"]}', []).append(
        str(r['seed']))
  return [
      '## Learning order and forgetting (partially corrupted labels)\n',
      'From each run\'s `examples.npz` (README "Learning order and '
      'forgetting"): an example is fitted from the first epoch after which '
      'it is predicted correctly at every later per-epoch evaluation (Arpit '
      'et al. 2017); a forgetting event is a correct-to-wrong change between '
      'consecutive per-epoch evaluations (Toneva et al. 2019 count on '
      'mini-batch presentations instead). Clean: label kept; corrupted: '
      'label changed. One row per run; `learning_order/` holds runs made for '
      'these records beside the paper\'s points.\n',
      f'![learning order]({FIGURE})\n',
      *(['\n'.join(lines) + '\n', _finding(rows) + '\n'] if rows else
        ['No run has examples.npz yet.\n']),
      'CSV: [learning_order.csv](learning_order.csv)\n',
      *(['Runs with partially corrupted labels without examples.npz or its '
         'corruption mask (runs trained before per-example records existed '
         'have none; not estimated): ' + '; '.join(
             f'{k} (seed{"s" * (len(v) > 1)} {", ".join(v)})'
             for k, v in sorted(without.items()))
         + '.\n'] if without else []),
  ]
