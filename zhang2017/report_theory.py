"""The report's Sections 4 and 5: the paper's Section 5 table with ours
beside it, and every theory run (results/theory/*/result.json) in a list."""

import glob
import json
import os

from zhang2017 import paper
from zhang2017 import results


def _load_theory(results_dir):
  out = []
  for path in sorted(glob.glob(os.path.join(results_dir, 'theory', '*',
                                            results.RESULT))):
    with open(path) as f:
      out.append((os.path.basename(os.path.dirname(path)), json.load(f)))
  return out


def _headline(runs, dataset, preprocessing, l2):
  """The full-size kernel run that stands for a Section 5 row: the median
  bandwidth rule if it was run, else a fixed gamma; of those, one that
  needed no ridge for positive definiteness, then the most random filters;
  None if there is none."""
  found = [(name, r) for name, r in runs
           if name.startswith('kernel-') and r['flags']['dataset'] == dataset
           and r['flags'].get('preprocessing', 'pixels') == preprocessing
           and bool(r['flags'].get('l2')) == l2
           and not r['flags'].get('train_size')]
  found.sort(key=lambda nr: (nr[1]['flags'].get('gamma_rule') != 'median',
                             bool(nr[1].get('jitter')),
                             -(nr[1].get('filters') or 0)))
  return found[0] if found else (None, None)


def _bandwidth(r):
  rule = r['flags'].get('gamma_rule', 'fixed')
  gamma = r.get('gamma', r['flags']['gamma'])
  doubled = r.get('gamma_doublings')  # Result files before the jitter rule.
  if doubled:
    rule += f' x 2^{doubled} (float32 Cholesky)'
  if r.get('jitter'):
    rule += f' + {r["jitter"]:g} I (float32 Cholesky)'
  return f'{rule}, gamma {gamma:.3g}'


def _paper_cell(name, r):
  """The paper's Section 5 row that a kernel run reproduces (from its flags,
  not from the result's own `paper` text), else that text."""
  if name.startswith('kernel-'):
    f = r['flags']
    key = (f['dataset'], f.get('preprocessing', 'pixels'), bool(f.get('l2')))
    for row in paper.SECTION5:
      if paper.SECTION5_MATCH[row.id] == key:
        norm = row.paper.get('norm')
        return (f'{row.label}: test error {row.paper["test_error"]:g}%' +
                (f', norm about {norm}' if norm else ''))
  return r.get('paper', '')


def section5_table(runs):
  """Markdown lines: the paper's Section 5 rows, paper beside ours."""
  lines = ['| row | paper test error (%) | ours (%) | paper norm | ours | '
           'bandwidth | run | how ours was obtained |',
           '|---|---|---|---|---|---|---|---|']
  for row in paper.SECTION5:
    name, r = _headline(runs, *paper.SECTION5_MATCH[row.id])
    norm = row.paper.get('norm')
    paper_cells = (f'{row.paper["test_error"]:.1f} | ', f'{norm:g}'
                   if norm else 'not reported')
    if r is None:
      lines.append(f'| {row.label} | {paper_cells[0]}not run | '
                   f'{paper_cells[1]} | not run | | | |')
      continue
    filters = f' ({r["filters"]:,} filters)' if r.get('filters') else ''
    lines.append(
        f'| {row.label} | {paper_cells[0]}{100 * r["test_error"]:.2f}'
        f'{filters} | '
        f'{paper_cells[1]} | {r["rkhs_norm"]:.1f} | {_bandwidth(r)} | {name} '
        f'| {results.provenance_cell(r)} |')
  return lines


def filter_curve(runs):
  """Markdown lines: CIFAR-10 random-feature runs by filter count."""
  rows = sorted(
      (r['filters'], bool(r['flags'].get('l2')), name, r) for name, r in runs
      if r.get('filters') and not r['flags'].get('train_size'))
  if not rows:
    return []
  lines = ['| filters | features | l2 | test error (%) | train error, 2,000 '
           'sample (%) | norm | bandwidth | total seconds | peak memory (GB) '
           '| run |', '|---|---|---|---|---|---|---|---|---|---|']
  for filters, _, name, r in rows:
    lines.append(
        f'| {filters:,} | {8 * filters:,} | {r["flags"].get("l2") or 0:g} | '
        f'{100 * r["test_error"]:.2f} | '
        f'{100 * r.get("train_error_sample", float("nan")):.2f} | '
        f'{r["rkhs_norm"]:.1f} | '
        f'{_bandwidth(r)} | {r["provenance"]["wall_seconds"]:.0f} | '
        f'{r["peak_memory_gb"]:.1f} | {name} |')
  return lines


def sections(results_dir):
  """The report's markdown sections for the theory results."""
  runs = _load_theory(results_dir)
  if not runs:
    return []
  lines = []
  for name, r in runs:
    keys = [k for k in r.get('summary_keys', []) if k in r]
    cells = ', '.join(
        f'{k} {r[k]:.4g}' if isinstance(r[k], float) else f'{k} {r[k]}'
        for k in keys)
    lines.append(f'| {name} | {_paper_cell(name, r)} | {cells} | '
                 f'{results.provenance_cell(r)} |')
  curve = filter_curve(runs)
  return [
      '## Section 5: minimum-norm interpolation\n',
      '\n'.join(section5_table(runs)) + '\n',
      'Each row shows the full-size run (all training images) that stands for '
      'it: with the median bandwidth rule (gamma = d / median squared '
      'distance between training images, `kernel --gamma_rule=median`) when '
      'that run exists, else a fixed gamma; the bandwidth column says which. '
      'Subset runs (a gamma table) are listed below.\n',
      *(['CIFAR-10 test error against the number of random filters (all '
         '50,000 training images; the paper used 32,000 filters; '
         '`kernel --preprocessing=random_features --filters=F`, features '
         'as in `random_features.py`). The kernel on the features is '
         'Gaussian with the median rule: a linear kernel interpolates 50,000 '
         'points only with at least 50,000 features (6,250 filters), beyond '
         'this machine in half an hour. The l2 column is the ridge added to '
         'the kernel matrix, whose diagonal is 1.\n',
         '\n'.join(curve) + '\n'] if curve else []),
      '## Theory and linear models (Sections 4 and 5), every run\n',
      '| run | paper | ours | how ours was obtained |\n|---|---|---|---|\n'
      + '\n'.join(lines) + '\n']
