"""Experiment runs: plan (flagfile x seed -> run folder) and run them.

Run folders are <results>/<experiment>/<row>/seed<k>/. A run whose result.json
exists is skipped and an interrupted one resumes from its checkpoint, so a
killed sweep started again finishes only what is missing. Each run's output
goes to train.log in its folder.
"""

import collections
import glob
import os
import subprocess
import sys
import time


from zhang2017 import paper
from zhang2017 import results
from zhang2017.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Run = collections.namedtuple('Run', 'experiment row seed flagfile run_dir')


def plan(experiment, seeds=1, rows=None, flags_dir=None, results_dir=None):
  """The runs of an experiment: one per (flagfile, seed), in file order.

  Args:
    experiment: a folder of `flags_dir`, e.g. 'table1'.
    seeds: seeds 0 .. seeds - 1 for every row.
    rows: optional row ids to run, in this order (others are left out).
    flags_dir: default <repo>/flags.
    results_dir: default <repo>/results.

  Returns:
    A list of `Run`.
  """
  flags_dir = flags_dir or os.path.join(ROOT, 'flags')
  results_dir = results_dir or os.path.join(ROOT, 'results')
  files = sorted(glob.glob(os.path.join(flags_dir, experiment, '*.flags')))
  if not files:
    known = sorted(os.listdir(flags_dir)) if os.path.isdir(flags_dir) else []
    raise UserError(f'no flagfiles for --experiment={experiment}; use one of '
                    f'{", ".join(known)}')
  ids = [os.path.basename(f)[:-len('.flags')] for f in files]
  if experiment in paper.EXPERIMENTS:  # Keep the paper's row order.
    order = [r.id for r in paper.EXPERIMENTS[experiment]]
    pairs = sorted(zip(ids, files),
                   key=lambda p: order.index(p[0]) if p[0] in order else 1e9)
    ids, files = [p[0] for p in pairs], [p[1] for p in pairs]
  if rows:
    unknown = set(rows) - set(ids)
    if unknown:
      raise UserError(f'--rows names unknown rows {sorted(unknown)}; see '
                      f'--experiment={experiment} --list')
    # Given rows run in the order given (e.g. cheap rows first on a lease).
    by_id = dict(zip(ids, files))
    ids, files = list(rows), [by_id[r] for r in rows]
  return [Run(experiment, i, s, f, os.path.join(results_dir, experiment, i,
                                                  f'seed{s}'))
          for i, f in zip(ids, files) for s in range(seeds)]


def command(run, extra=()):
  """The training command line of a run."""
  return [sys.executable, '-m', 'zhang2017.train', f'--flagfile={run.flagfile}',
          f'--seed={run.seed}', f'--output_dir={run.run_dir}', *extra]


def _summary(res):
  return (f'{res["status"]}: train {res["train_accuracy"]:.4f} test '
          f'{res["test_accuracy"]:.4f}, {res["epochs"]} epochs')


def run_all(runs, parallel=1, extra=(), env=None, log=print):
  """Runs every incomplete run, `parallel` processes at a time.

  Returns:
    The number of runs that failed (non-zero exit without a result).
  """
  todo = [r for r in runs if results.load(r.run_dir) is None]
  log(f'{len(runs)} runs, {len(runs) - len(todo)} already complete, '
      f'{len(todo)} to run, {parallel} at a time')
  running, failed, done, start = {}, 0, 0, time.time()
  env = {**os.environ, **(env or {})}
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  while todo or running:
    while todo and len(running) < parallel:
      r = todo.pop(0)
      os.makedirs(r.run_dir, exist_ok=True)
      logf = open(os.path.join(r.run_dir, 'train.log'), 'a')
      p = subprocess.Popen(command(r, extra), stdout=logf,
                           stderr=subprocess.STDOUT, env=env, cwd=ROOT)
      running[p] = (r, logf, time.time())
      log(f'start {r.experiment}/{r.row} seed {r.seed}')
    time.sleep(0.5)
    for p in [p for p in running if p.poll() is not None]:
      r, logf, t0 = running.pop(p)
      logf.close()
      done += 1
      res = results.load(r.run_dir)
      if res is None:
        failed += 1
        msg = f'FAILED (exit {p.returncode}; see {r.run_dir}/train.log)'
      else:
        msg = _summary(res)
      log(f'[{done}/{done + len(running) + len(todo)} done, {len(running)} '
          f'running, {time.time() - start:.0f}s] {r.experiment}/{r.row} seed '
          f'{r.seed}: {msg} ({time.time() - t0:.0f}s)')
  return failed
