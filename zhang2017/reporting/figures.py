"""The paper's figures from result files: Fig. 1a, 1b, 1c and 2b as PNGs.

Runs come from `report_lib.load_runs` (a DataFrame, one row per run); curves
from each run's history.csv. Several seeds of a point: the mean, with the
spread (min..max) drawn as an error bar.
"""

import os

import pandas as pd

from zhang2017.reporting import paper
from zhang2017.training import results

# Figure 1b: "time to fit" is the first step at which inference-mode training
# accuracy reaches this fraction (the paper's MLP 1x512 itself stops at 99.34%
# on random labels, so exactly 100% cannot be the criterion for every curve).
FIT_THRESHOLD = 0.98


def history(run_dir):
  """A run's history.csv as a DataFrame (empty if there is none)."""
  path = os.path.join(run_dir, results.HISTORY)
  return pd.read_csv(path) if os.path.exists(path) else pd.DataFrame()


def steps_to(hist, threshold):
  """First step with inference-mode training accuracy >= threshold, or None."""
  if hist.empty:
    return None
  hit = hist[hist['train_accuracy'] >= threshold]
  return int(hit['step'].iloc[0]) if len(hit) else None


def fig1bc_points(runs, flags_dir, row_runs):
  """Fig. 1b/1c points: DataFrame of model, p, seed, relative time to fit
  (NaN: not reached), test error, and the lower bound for unreached ones.

  Args:
    runs: `report_lib.load_runs` output.
    flags_dir: the flagfiles (to borrow identical runs of other rows).
    row_runs: `report_lib.row_runs`.
  """
  rows = []
  for model in paper.FIG1BC_MODELS:
    for p in paper.FIG1BC_PROBS:
      rid = f'{model}_p{int(round(p * 10)):02d}'
      rs, _ = row_runs(runs, 'fig1bc', rid, flags_dir)
      for _, r in rs.iterrows():
        rows.append({'model': model, 'p': p, 'seed': r['seed'],
                     'steps': steps_to(history(r['run_dir']), FIT_THRESHOLD),
                     'test_error': 1 - r['test_accuracy'],
                     'bound': r['epochs'] * r['steps_per_epoch'],
                     'provenance': r['provenance']})
  df = pd.DataFrame(rows, columns=['model', 'p', 'seed', 'steps', 'test_error',
                                   'bound', 'provenance'])
  df['steps'] = df['steps'].astype(float)
  base = df[df['p'] == 0.0].groupby('model')['steps'].mean()
  df['base'] = df['model'].map(base)
  df['relative'] = df['steps'] / df['base']
  df['bound_relative'] = df['bound'] / df['base']
  return df


def plot(path, draw):
  """Writes one figure to `path` (PNG, no timestamp): `draw(ax)` fills it."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
  draw(ax)
  fig.tight_layout()
  fig.savefig(path, metadata={'Software': None})
  plt.close(fig)


def _line_plot(data, ylabel, title):
  def draw(ax):
    for label, xs, ys in data:
      ax.plot(xs, ys, label=label)
    if data:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, 'no results yet', ha='center', transform=ax.transAxes)
    ax.set_xlabel('steps')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
  return draw


def _spread(ax, df, ycol, fmt, **kw):
  """Mean per p, error bar from min to max over seeds; returns the line."""
  g = df.groupby('p')[ycol].agg(['mean', 'min', 'max']).reset_index()
  if g.empty:
    return None
  err = [g['mean'] - g['min'], g['max'] - g['mean']]
  line = ax.errorbar(g['p'], g['mean'], yerr=err, fmt=fmt, capsize=2, **kw)
  return line.lines[0]


def status_cell(rs):
  """A row's status: fitted in how many epochs, or what happened instead."""
  if (rs['status'] == 'fitted').all():
    return f'fitted in {rs["epochs_to_fit"].mean():.0f} epochs'
  parts = set()
  for _, r in rs.iterrows():
    if r['status'] == 'diverged':
      parts.add(f'diverged (loss not finite) at epoch {r["epochs"]}')
    elif r['status'] == 'not_fitted':
      parts.add(f'not fitted in {r["epochs"]} epochs '
                f'({100 * r["train_accuracy"]:.2f}%)')
    else:
      parts.add(f'fitted in {r["epochs_to_fit"]} epochs')
  return '; '.join(sorted(parts))


def _fit_cell(rs):
  """Steps to fit of a one-run frame, or what happened instead."""
  r = rs.iloc[0]
  if r['status'] != 'fitted':
    return status_cell(rs)
  epochs = f'{int(r["epochs_to_fit"])} epochs'
  if pd.isna(r['steps_per_epoch']):  # An older result: epochs only.
    return epochs
  return f'{int(r["epochs_to_fit"] * r["steps_per_epoch"]):,} ({epochs})'


def curve_table(runs, flags_dir, row_runs):
  """Markdown: each Fig. 1a and 2b curve's plotted run (the first seed), its
  steps to 100% training accuracy, final test accuracy and provenance."""
  lines = ['| figure | curve | steps to fit | test accuracy (%) | how ours was '
           'obtained |', '|---|---|---|---|---|']
  for exp, title in (('fig1a', 'Fig. 1a'), ('fig2b', 'Fig. 2b')):
    for row in paper.EXPERIMENTS[exp]:
      rs, note = row_runs(runs, exp, row.id, flags_dir)
      if not len(rs):
        lines.append(f'| {title} | {row.label} | not run | not run |  |')
        continue
      first = rs.iloc[:1]  # The plotted run.
      r = first.iloc[0]
      how = r['provenance'] + (f' ({note})' if note else '')
      lines.append(f'| {title} | {row.label} | {_fit_cell(first)} | '
                   f'{100 * r["test_accuracy"]:.2f} | {how} |')
  return '\n'.join(lines) + '\n'


def make_figures(runs, results_dir, flags_dir, row_runs):
  """Writes fig1a.png, fig1b.png, fig1c.png, fig2b.png; returns the Fig.
  1b/1c points (`fig1bc_points`)."""
  def curves(experiment, ykey, scale=1.0):
    out = []
    for row in paper.EXPERIMENTS[experiment]:
      rs, _ = row_runs(runs, experiment, row.id, flags_dir)
      if len(rs):
        h = history(rs.iloc[0]['run_dir'])
        out.append((row.label, h['step'].tolist(),
                    (scale * h[ykey]).tolist()))
    return out

  plot(os.path.join(results_dir, 'fig1a.png'), _line_plot(
      curves('fig1a', 'train_loss'), 'average training loss',
      'Fig. 1a: Inception on CIFAR-10'))
  plot(os.path.join(results_dir, 'fig2b.png'), _line_plot(
      curves('fig2b', 'test_accuracy', 100.0), 'test accuracy (%)',
      'Fig. 2b: Inception with and without BN'))
  pts = fig1bc_points(runs, flags_dir, row_runs)

  def draw_b(ax):
    for model in paper.FIG1BC_MODELS:
      ps = pts[pts['model'] == model]
      line = _spread(ax, ps.dropna(subset=['relative']), 'relative', 'o-',
                     label=model)
      lower = ps[ps['relative'].isna() & ps['bound_relative'].notna()]
      if line is not None and len(lower):
        ax.plot(lower['p'], lower['bound_relative'], '^', mfc='none',
                color=line.get_color(),
                label=f'{model}: not reached (lower bound)')
    ax.set_xlabel('label corruption')
    ax.set_ylabel('time to fit / time with true labels')
    ax.set_title(f'Fig. 1b (fit = train acc >= {FIT_THRESHOLD:.0%})',
                 fontsize=9)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)

  def draw_c(ax):
    for model in paper.FIG1BC_MODELS:
      ps = pts[pts['model'] == model].assign(
          test_error=lambda d: 100 * d['test_error'])
      _spread(ax, ps, 'test_error', 'o-', label=model)
    ax.set_xlabel('label corruption')
    ax.set_ylabel('test error (%)')
    ax.set_title('Fig. 1c: test error after training', fontsize=9)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)

  plot(os.path.join(results_dir, 'fig1b.png'), draw_b)
  plot(os.path.join(results_dir, 'fig1c.png'), draw_c)
  return pts
