r"""The probe of a GPU session: compiles and times the forms of the plan's
next training program, one at a time, and picks one by a written rule.

  bash benchmarks/device_session.sh   # runs it (BUILD.md "GPU sessions")
  KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=/tmp/c python \
      benchmarks/compile_probe.py --rows=alexnet --ledger_dir=/tmp/c \
      --train_flags=--train_size=256,--test_size=256,--epochs=1,--eval_batch_size=256

The program probed is the one the plan needs next: the first unfinished run
of --experiment (in --results_dir) whose program the ledger lacks under the
carried choice, else the first unfinished run. Each case (a form of the
training program and XLA_FLAGS: zhang2017/sweeps/deadline.py's CASES) runs
in its own process (XLA reads XLA_FLAGS once), one at a time, with the runs'
own flags, data and optimizer and the persistent compilation cache on, so
the chosen case's compile is the one the runs load; its log (compile and
cache lines included) stays in --log_dir. A case compiles the training and
the evaluation program (timed), then trains two epochs and evaluates both
splits twice, and reports the second of each.

Which cases: with a choice in the ledger (an earlier lease's), that case
alone, so that every program compiles once, under one XLA_FLAGS. Otherwise
--cases in order (those cut in an earlier lease last): the first gets all of
the probe's time (until --probe_until), each later one starts only if the
time left exceeds the start-up plus the quickest compile so far. A case may
run on until --until (the session's end) while no program has compiled yet
(no run could start without one) or when its program's compile was cut in
an earlier lease (it would be cut again at the same limit). Then
`deadline.choose` picks the case of least expected device time for the rest
of the plan, or none when no case compiled; the choice goes into the ledger
and, as shell assignments (CASE, FORM, STEPS_PER_CALL, XLA_FLAGS), into
--choice_file.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

_START = time.time()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from zhang2017.sweeps import carry
from zhang2017.sweeps import deadline
from zhang2017.sweeps import sweep_lib
from zhang2017.training import results

_EXPERIMENT = flags.DEFINE_string('experiment', 'conv', 'The plan.')
_ROWS = flags.DEFINE_list('rows', None, 'Only these rows of the plan.')
_RESULTS_DIR = flags.DEFINE_string('results_dir', None, 'The runs\' folder.')
_TRAIN_FLAGS = flags.DEFINE_list('train_flags', [], 'The runs\' extra flags '
                                 '(the case adds --steps_per_call).')
_LEDGER_DIR = flags.DEFINE_string('ledger_dir', None, 'Folder of ledger.json.')
_LOG_DIR = flags.DEFINE_string('probe_logs', '/tmp',
                               'probe-<case>.log go here.')
_CHOICE_FILE = flags.DEFINE_string('choice_file', None,
                                   'Write the choice here.')
_CASES = flags.DEFINE_list('cases', list(deadline.CASES), 'Cases, in order.')
_PROBE_UNTIL = flags.DEFINE_float('probe_until', None, 'Unix time the probe '
                                  'ends by (default: in 300 s).')
_UNTIL = flags.DEFINE_float('until', None, 'Unix time a case may run to when '
                            'no program compiled yet or its compile was cut '
                            'before (default: --probe_until).')
_MEM = flags.DEFINE_float('mem_fraction', 0.5, 'GPU memory of a case.')
_CASE = flags.DEFINE_string('case', None, 'Internal: run one case.')
_PROGRAM = flags.DEFINE_string('program', None, 'Internal: its flagfile.')


def run_case(case, flagfile, train_flags):
  """Builds the run's trainer, compiles and times one case; prints lines."""
  from zhang2017.data import batches
  from zhang2017.training import backends
  from zhang2017.training import distribute
  from zhang2017.training import train_lib
  extra, _ = deadline.case_flags(case, train_flags)
  cfg = deadline.run_config(flagfile, extra)
  ds, _, _ = train_lib.prepare_data(cfg)
  distribute.setup(cfg.seed, cfg.mixed_precision)
  steps, n = ds.n_train // cfg.batch_size, ds.n_train
  model = train_lib.build_model(cfg, ds.num_classes, ds.input_shape)
  opt = train_lib.build_optimizer(cfg, steps)
  tr = backends.make(model, opt, ds, cfg.batch_size, cfg.eval_batch_size,
                     None, cfg.steps_per_call)
  out = {'startup_s': time.time() - _START}
  k = batches.chunk_steps(steps, cfg.steps_per_call)
  idx = batches.epoch_batches(train_lib.epoch_order(cfg.seed, 0, n),
                              cfg.batch_size)[:k]
  # pylint: disable=protected-access
  state = tr._read_state()
  t0 = time.time()
  tr._train.lower(state, tr._x, tr._y, idx).compile()
  out['compile_train_s'] = time.time() - t0
  t0 = time.time()
  tr._eval.lower(state[0], state[1],
                 tr._eval_x['test'][:cfg.eval_batch_size]).compile()
  # pylint: enable=protected-access
  out['compile_eval_s'] = time.time() - t0
  out['steps_per_call'] = k
  print('COMPILED ' + json.dumps(out), flush=True)
  for what, fn in (('train_s', lambda e: tr.train_epoch(
      e, train_lib.epoch_order(cfg.seed, e, n))), ('eval_s', lambda e: (
          tr.evaluate('train'), tr.evaluate('test')))):
    for e in (0, 1):  # The first call loads the program from the cache.
      t0 = time.time()
      fn(e)
      out[what] = time.time() - t0
  print('RESULT ' + json.dumps(out), flush=True)


def _image():
  """The software and device the cache entries are valid for (asked in a
  process of its own: this one forks the cases, which JAX's threads and
  device memory would not survive)."""
  code = ('import jax, jaxlib; d = jax.devices(); print(f"jax {jax.__version__}'
          ', jaxlib {jaxlib.__version__}, {len(d)} x {d[0].device_kind}")')
  env = {**os.environ, 'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'}
  p = subprocess.run([sys.executable, '-c', code], env=env, text=True,
                     capture_output=True, check=True)
  return p.stdout.strip().splitlines()[-1]


def _run(case, target, left):
  """Runs one case in its own process for at most `left` s: its report."""
  form, xla = deadline.CASES[case]
  path = os.path.join(_LOG_DIR.value, f'probe-{case}.log')
  env = {**os.environ, 'XLA_FLAGS': xla, 'PYTHONUNBUFFERED': '1',
         'XLA_PYTHON_CLIENT_MEM_FRACTION': str(_MEM.value)}
  t0 = time.time()
  with open(path, 'a') as log:
    p = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), f'--case={case}',
         f'--program={target.flagfile}',
         f'--train_flags={",".join(_TRAIN_FLAGS.value)}'], env=env,
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=os.setpgrp)
    try:
      p.wait(timeout=max(left, 1))
    except subprocess.TimeoutExpired:
      os.killpg(p.pid, signal.SIGKILL)
      p.wait()
  with open(path) as f:
    text = f.read()
  lines = [l for l in text.splitlines() if l.startswith(('COMPILED ',
                                                         'RESULT '))]
  r = json.loads(lines[-1].split(' ', 1)[1]) if lines else {}
  r.update(case=case, form=form, xla=xla, seconds=time.time() - t0,
           finished=bool(lines) and lines[-1].startswith('RESULT '),
           exit=p.returncode, log=os.path.basename(path),
           cache={e[0]: e[1] for e in carry.compile_events(text)},
           text=text)
  return r


def _entries():
  """The executables in the compilation cache: {file name: bytes}."""
  d = os.environ.get('JAX_COMPILATION_CACHE_DIR') or ''
  return {n: os.path.getsize(os.path.join(d, n)) for n in (
      os.listdir(d) if os.path.isdir(d) else []) if n.endswith('-cache')}


def _prune(new, chosen, ledger, pids):
  """Deletes the executables the cases not chosen added, unless the chosen
  case used them too (every byte carried is one the runs load), and their
  programs from the ledger."""
  for case in new:
    if case != chosen['case']:
      ledger.programs.pop(pids[case], None)
  used = set(re.findall(r"with key '([^']+)'", chosen.get('text', '')))
  drop = [n for case, names in new.items() if case != chosen['case']
          for n in names if n[:-len('-cache')] not in used]
  d = os.environ['JAX_COMPILATION_CACHE_DIR']
  size = sum(os.path.getsize(os.path.join(d, n)) for n in drop)
  for n in drop:
    os.remove(os.path.join(d, n))
  print(f'cache: removed {len(drop)} entries ({size / 2**20:.1f} MiB) that '
        'only the cases not chosen use')


def _row(r):
  cache = '/'.join(r['cache'].get(p, '-') for p in ('zhang2017_train',
                                                    'zhang2017_eval'))
  if 'compile_train_s' not in r:
    why = 'timeout' if r['exit'] == -signal.SIGKILL else f'exit {r["exit"]}'
    return (f'{r["case"]:<26}{"":>6}{why + " after":>22}{r["seconds"]:>7.0f}s'
            f'  {r["log"]}')
  timing = (f'{r["train_s"]:>8.2f}{r["eval_s"]:>7.2f}' if r['finished']
            else f'{"timeout":>15}')
  return (f'{r["case"]:<26}{r["steps_per_call"]:>6}{r["compile_train_s"]:>9.1f}'
          f'{r["compile_eval_s"]:>7.1f}{r["startup_s"]:>7.1f}{timing}  {cache}'
          f'  XLA_FLAGS={r["xla"]}')


def _cases(ledger, target):
  """The cases to probe, in order, with the program id of each."""
  choice = ledger.data['choice']
  names = [choice] if choice in deadline.CASES else list(_CASES.value)
  pids = {c: deadline.program_id(
      target.flagfile, *deadline.case_flags(c, _TRAIN_FLAGS.value)) for c in
          names}
  cut = lambda c: 'cut_s' in ledger.programs.get(pids[c], {})
  return sorted(names, key=lambda c: (cut(c), names.index(c))), pids


def main(argv):
  del argv
  if _CASE.value:
    run_case(_CASE.value, _PROGRAM.value, _TRAIN_FLAGS.value)
    return
  for c in _CASES.value:
    if c not in deadline.CASES:
      raise app.UsageError(f'--cases: unknown {c}; use {list(deadline.CASES)}')
  until = _PROBE_UNTIL.value or time.time() + 300
  ledger = deadline.Ledger(_LEDGER_DIR.value)
  image = _image()
  if ledger.data['image'] not in (None, image):  # Its cache entries never hit.
    print(f'ledger: {ledger.data["image"]} before, {image} now: ledger and '
          'compilation cache start afresh')
    ledger.reset()
    cache = os.environ.get('JAX_COMPILATION_CACHE_DIR')
    if cache:
      shutil.rmtree(cache, ignore_errors=True)
  ledger.data['image'] = image
  print(f'probe: {image}; {_EXPERIMENT.value} plan, training flags '
        f'{",".join(_TRAIN_FLAGS.value) or "(none)"}')
  runs = sweep_lib.plan(_EXPERIMENT.value, rows=_ROWS.value,
                        results_dir=_RESULTS_DIR.value)
  todo = [r for r in runs if results.load(r.run_dir) is None]
  measured, startup, new, reports = [], None, {}, {}
  if todo:
    choice = ledger.data['choice']
    target = todo[0]
    if choice in deadline.CASES:
      extra, xla = deadline.case_flags(choice, _TRAIN_FLAGS.value)
      target = next((r for r in todo if not ledger.compiled(
          deadline.program_id(r.flagfile, extra, xla))), todo[0])
    cases, pids = _cases(ledger, target)
    print(f'program: {target.experiment}/{target.row} '
          f'({os.path.relpath(target.flagfile, results.ROOT)}); cases '
          f'{", ".join(cases)}; {until - time.time():.0f}s for the probe')
    print(f'{"case":<26}{"steps":>6}{"compile":>9}{"eval":>7}{"start":>7}'
          f'{"train s":>8}{"eval s":>7}  cache (train/eval)')
    for case in cases:
      ok = [m for _, m in measured if m]
      # Without a compiled program no run can start, and a compile cut once
      # at this limit would be cut again: such a case may use the session.
      first = not ok and not any('compile_s' in p
                                 for p in ledger.programs.values())
      again = 'cut_s' in ledger.programs.get(pids[case], {})
      end = (_UNTIL.value or until) if first or again else until
      left = end - time.time()
      need = (startup or 0) + min([m['compile_s'] for m in ok], default=0)
      if left < max(need, 1) and ok:
        print(f'{case:<26}not tried: {left:.0f}s left, {need:.0f}s needed')
        continue
      before = _entries()
      r = reports[case] = _run(case, target, left)
      new[case] = set(_entries()) - set(before)
      print(_row(r), flush=True)
      label = f'{target.experiment}/{target.row}'
      if 'startup_s' in r:
        startup = max(startup or 0, r['startup_s'])
        ledger.data['startup_s'] = startup
      if r['finished']:
        ledger.record(pids[case], label, r['compile_train_s'] +
                      r['compile_eval_s'], r['train_s'] + r['eval_s'])
        entry = ledger.programs[pids[case]]
        measured.append((case, {'compile_s': entry['compile_s'],
                                'epoch_s': r['train_s'] + r['eval_s']}))
      else:
        ledger.record(pids[case], label, cut_s=r['seconds'] - (startup or 0))
        measured.append((case, None))
      ledger.save()
  else:
    print('probe: every run of the plan is complete')
  choice = ledger.data['choice']
  if choice in deadline.CASES:
    why = 'the carried choice (kept: the cache holds its programs)'
  else:
    choice, costs = deadline.choose(measured, todo, _TRAIN_FLAGS.value, ledger)
    why = ('least expected device time for the rest of the plan: ' +
           ', '.join(f'{c} {s:.0f}s' for c, s in costs.items()) if choice
           else 'no case compiled')
    ledger.data['choice'] = choice
    if choice:
      _prune(new, reports[choice], ledger, pids)
  ledger.save()
  print(f'choice: {choice or "none"} ({why})')
  if _CHOICE_FILE.value:
    form, xla = deadline.CASES.get(choice, ('none', ''))
    with open(_CHOICE_FILE.value, 'w') as f:
      for k, v in (('CASE', choice or 'none'), ('FORM', form),
                   ('STEPS_PER_CALL', deadline.FORMS.get(form, '')),
                   ('XLA_FLAGS', xla)):
        f.write(f'{k}={shlex.quote(str(v))}\n')


if __name__ == '__main__':
  app.run(main)
