"""Experiment runs: plan (flagfile x seed -> run folder) and run them.

Run folders are <results>/<experiment>/<row>/seed<k>/. A run whose result.json
exists is skipped and an interrupted one resumes from its checkpoint, so a
killed sweep started again finishes only what is missing. Each run's output
goes to train.log in its folder.

Besides the folders of flags/, `PLANS` names plans that span experiments:
`conv` is every CIFAR-10 conv-net run of the paper, each distinct run once.
"""

import collections
import glob
import os
import signal
import subprocess
import sys
import time

from zhang2017 import cli
from zhang2017.reporting import paper
from zhang2017.sweeps.carry import pack  # pylint: disable=unused-import
from zhang2017.training import results
from zhang2017.errors import UserError

# `also`: rows of other experiments that are the same run (same flags).
Run = collections.namedtuple('Run', 'experiment row seed flagfile run_dir also',
                             defaults=((),))
CONV_MODELS = ('inception_small', 'inception_small_nobn', 'alexnet_small')
# Where the conv plan looks for runs, in this order; see `conv_plan` for the
# order it runs them in.
CONV_EXPERIMENTS = ('table1', 'fig1a', 'fig2b', 'fig1bc', 'appendix')


def _flagfiles(experiment, flags_dir):
  """[(row id, flagfile)] of an experiment, in the paper's row order."""
  files = sorted(glob.glob(os.path.join(flags_dir, experiment, '*.flags')))
  if not files:
    known = sorted(os.listdir(flags_dir)) if os.path.isdir(flags_dir) else []
    raise UserError(f'no flagfiles for --experiment={experiment}; use one of '
                    f'{", ".join(known + sorted(PLANS))}')
  pairs = [(os.path.basename(f)[:-len('.flags')], f) for f in files]
  if experiment in paper.EXPERIMENTS:  # Keep the paper's row order.
    order = [r.id for r in paper.EXPERIMENTS[experiment]]
    pairs.sort(key=lambda p: order.index(p[0]) if p[0] in order else 1e9)
  return pairs


def plan(experiment, seeds=1, rows=None, flags_dir=None, results_dir=None):
  """The runs of an experiment (or of a plan in `PLANS`), one per row x seed.

  Args:
    experiment: a folder of `flags_dir`, e.g. 'table1', or a key of PLANS.
    seeds: seeds 0 .. seeds - 1 for every row.
    rows: optional row ids to run, in this order (others are left out).
    flags_dir: default <repo>/flags.
    results_dir: default <repo>/results.

  Returns:
    A list of `Run`.
  """
  flags_dir = flags_dir or os.path.join(results.ROOT, 'flags')
  results_dir = results_dir or os.path.join(results.ROOT, 'results')
  if experiment in PLANS:
    pairs = PLANS[experiment](flags_dir)
  else:
    pairs = [(experiment, i, f, ()) for i, f in
             _flagfiles(experiment, flags_dir)]
  if rows:
    ids = [p[1] for p in pairs]
    unknown = set(rows) - set(ids)
    if unknown:
      raise UserError(f'--rows names unknown rows {sorted(unknown)}; see '
                      f'--experiment={experiment} --list')
    # Given rows run in the order given (e.g. cheap rows first on a lease).
    pairs = [pairs[ids.index(r)] for r in rows]
  return [Run(e, i, s, f, os.path.join(results_dir, e, i, f'seed{s}'), also)
          for e, i, f, also in pairs for s in range(seeds)]


def conv_plan(flags_dir):
  """Every CIFAR-10 conv-net run of Table 1, Fig. 1a/1b/1c/2b and the
  appendix, each distinct configuration once (the first row that names it
  runs it; identical rows of other experiments are listed in `also`).

  Order: runs grouped by compiled program (`program_key`), the programs that
  serve the most runs first (small Inception: 13 runs, AlexNet: 11, then
  one or two runs each, the 300-epoch augmentation row last), so that each
  compilation is paid for early by many whole rows and curves."""
  out, index = [], {}
  for exp in CONV_EXPERIMENTS:
    for row, ff in _flagfiles(exp, flags_dir):
      cfg = cli.parse_flagfile(ff)
      if cfg.model not in CONV_MODELS:
        continue
      key = _key(cfg.run_key())
      if key in index:
        out[index[key]][3].append(f'{exp}/{row}')
        continue
      index[key] = len(out)
      out.append((exp, row, ff, []))
  keys = [program_key(f) for _, _, f, _ in out]
  size = {k: keys.count(k) for k in keys}
  first = {k: keys.index(k) for k in reversed(keys)}
  order = sorted(range(len(out)),
                 key=lambda i: (-size[keys[i]], first[keys[i]], i))
  return [(out[i][0], out[i][1], out[i][2], tuple(out[i][3])) for i in order]


PLANS = {'conv': conv_plan}


def _key(d):
  return tuple(sorted((k, repr(v)) for k, v in d.items()))


def program_key(flagfile, extra=()):
  """What decides a run's compiled programs: its flags less the labels,
  seed and epoch limit (data and seeds are arguments of the programs).
  Runs with one key share JAX's persistent compilation cache."""
  cfg = cli.parse_flagfile(flagfile)
  d = cfg.run_key()
  for k in ('labels', 'corrupt_prob', 'seed', 'epochs'):
    d.pop(k)
  d['pixels'] = cfg.pixels == 'gaussian'  # float images, not uint8
  return _key({**d, 'extra': tuple(extra)})


def command(run, extra=()):
  """The training command line of a run."""
  return [sys.executable, '-m', 'zhang2017.train', f'--flagfile={run.flagfile}',
          f'--seed={run.seed}', f'--output_dir={run.run_dir}', *extra]


def run_env(env=None):
  """Our environment, `env` on top, this checkout first on PYTHONPATH."""
  env = {**os.environ, **(env or {})}
  env['PYTHONPATH'] = results.ROOT + os.pathsep + env.get('PYTHONPATH', '')
  return env


def _summary(res):
  return (f'{res["status"]}: train {res["train_accuracy"]:.4f} test '
          f'{res["test_accuracy"]:.4f}, {res["epochs"]} epochs')


def _stop(p):
  """Ends a run and everything it started (it leads its process group)."""
  try:
    os.killpg(p.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  p.wait()


def run_all(runs, parallel=1, extra=(), env=None, log=print, time_limit=None,
            max_compiling=2, on_done=None, rule=None):
  """Runs every incomplete run, `parallel` processes at a time.

  A run waits while another run of the same program (`program_key`) is still
  in its first epoch, so that the second one reads the first one's compiled
  program from the persistent cache instead of compiling it again.

  Args:
    runs: `Run`s, in the order to start them.
    parallel: processes at once.
    extra: flags added to every training command.
    env: environment variables added for every run.
    log: where progress lines go.
    time_limit: seconds; at the limit running runs are killed (they leave
      no result.json; started again they resume from their checkpoint) and
      no new run starts.
    max_compiling: runs of programs not compiled yet in this sweep that may
      compile at once (compilation competes for the same CPUs and GPU).
    on_done: called after every run that ends (e.g. to pack results as they
      come, so that a killed session still returns what finished).
    rule: with `time_limit`, a `deadline.Rule`: a run whose expected time
      (`rule.expected_s`) exceeds the time left is not started; programs it
      knows compiled need no first-epoch wait; each run's history is
      recorded into it (`rule.observe`) after its first epoch and at its end.

  Returns:
    (failed, cut): runs that ended without a result, runs cut by the limit.
  """
  rule = rule if time_limit else None
  todo = [r for r in runs if results.load(r.run_dir) is None]
  log(f'{len(runs)} runs, {len(runs) - len(todo)} already complete, '
      f'{len(todo)} to run, {parallel} at a time'
      + (f', time limit {time_limit:.0f}s' if time_limit else ''))
  keys = {r: program_key(r.flagfile, extra) for r in todo}
  running, start = {}, time.time()
  env = run_env(env)
  try:
    return _loop(todo, running, parallel, extra, env, log, time_limit, keys,
                 start, max_compiling, on_done or (lambda: None), rule)
  finally:  # Interrupted (Ctrl-C, SIGTERM): no run outlives the sweep.
    for p, (_, logf, _) in running.items():
      _stop(p)
      logf.close()


def _loop(todo, running, parallel, extra, env, log, time_limit, keys, start,
          max_compiling, on_done, rule):
  """run_all's scheduling loop; `running` is shared so it can be cleaned."""
  warm, failed, done, late = set(), 0, 0, 0
  if rule:  # Their programs are in the persistent cache already.
    warm = {keys[r] for r in todo if rule.known(r)}

  def cold():  # Keys whose first run in this sweep is still compiling.
    return {keys[r] for r, _, _ in running.values()
            if keys[r] not in warm}

  def startable(r):
    busy = cold()
    return keys[r] in warm or (keys[r] not in busy and
                               len(busy) < max_compiling)

  while todo or running:
    if time_limit and time.time() - start > time_limit:
      cut = len(running)
      for p, (r, logf, t0) in list(running.items()):
        _stop(p)
        logf.close()
        del running[p]
        if rule:
          rule.observe(r, cut_after=time.time() - t0)
        log(f'cut by the time limit: {r.experiment}/{r.row} seed {r.seed}')
      log(f'time limit {time_limit:.0f}s reached: {done} runs ended, '
          f'{cut} cut, {len(todo)} not started')
      return failed, cut
    while len(running) < parallel:
      ready = [r for r in todo if startable(r)]
      if not ready:
        break
      r = ready[0]
      todo.remove(r)
      need = rule.expected_s(r) if rule else None
      left = time_limit - (time.time() - start) if time_limit else None
      if need is not None and need > left:
        late += 1
        log(f'not started: {r.experiment}/{r.row} seed {r.seed} expects '
            f'{need:.0f}s, {left:.0f}s left')
        continue
      os.makedirs(r.run_dir, exist_ok=True)
      logf = open(os.path.join(r.run_dir, 'train.log'), 'a')
      # Its own process group, so that stopping it stops what it started.
      p = subprocess.Popen(command(r, extra), stdout=logf,
                           stderr=subprocess.STDOUT, env=env, cwd=results.ROOT,
                           preexec_fn=os.setpgrp)
      running[p] = (r, logf, time.time())
      log(f'start {r.experiment}/{r.row} seed {r.seed}')
    time.sleep(0.5)
    for r, _, t0 in running.values():
      h = os.path.join(r.run_dir, results.HISTORY)
      # Written by this process (a resumed run's is older): epoch 1 is done.
      if keys[r] not in warm and os.path.exists(h) and os.path.getmtime(
          h) >= t0:
        warm.add(keys[r])
        if rule:
          rule.observe(r)
    for p in [p for p in running if p.poll() is not None]:
      r, logf, t0 = running.pop(p)
      logf.close()
      done += 1
      if rule:
        rule.observe(r)
      res = results.load(r.run_dir)
      if res is None:
        failed += 1
        msg = f'FAILED (exit {p.returncode}; see {r.run_dir}/train.log)'
      else:
        warm.add(keys[r])
        msg = _summary(res)
      log(f'[{done}/{done + len(running) + len(todo)} done, {len(running)} '
          f'running, {time.time() - start:.0f}s] {r.experiment}/{r.row} seed '
          f'{r.seed}: {msg} ({time.time() - t0:.0f}s)')
      on_done()
  if late:
    log(f'{late} runs not started: their expected time did not fit')
  return failed, 0
