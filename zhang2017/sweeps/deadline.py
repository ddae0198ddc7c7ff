"""A sweep under a deadline: the ledger of measured times, the rule that
decides whether a run may still start, and the rule that picks the form of
the training program (BUILD.md "GPU sessions").

The ledger (`ledger.json`, kept beside the JAX compilation cache and carried
with it from lease to lease) holds, per compiled program (its
`sweep_lib.program_key` under one XLA_FLAGS): the seconds its training and
evaluation programs took to compile and the seconds per epoch (training plus
the evaluation of both splits); and once, the start-up of a training process
(imports, data, model). A program enters the ledger only once it compiled,
so the cache beside the ledger holds it.

Start rule: a run starts only if

    startup + compile (unless the ledger has its program) + epochs left x s/epoch

fits in the time left, where a program not in the ledger is expected to
compile as long as, and train as slowly as, the slowest in it (or as long as
its own cut compile ran, if longer), and epochs left are the epoch limit less
the epochs of the run's checkpoint. With no measurement yet there is no rule.

Form rule (`choose`): among the probed cases whose programs compiled, the one
with the least expected device time for the rest of the plan,

    programs still to compile x compile s + epochs left in the plan x s/epoch;

none when no case compiled.
"""

import dataclasses
import hashlib
import json
import os
import statistics

from absl import flags

from zhang2017 import cli
from zhang2017.errors import UserError
from zhang2017.sweeps import sweep_lib
from zhang2017.training import config as config_lib
from zhang2017.training import results

LEDGER = 'ledger.json'
CHECKPOINT = 'checkpoint.npz'  # training/checkpoint.py's (which loads keras).
# The forms of the training program (--steps_per_call): a lax.scan over the
# epoch, one jitted step per call, or a scan over CHUNK steps.
FORMS = {'epoch': 0, 'step': 1, 'chunk': 30}
AUTOTUNE = '--xla_gpu_autotune_level={}'
LLVM_PARALLEL = '--xla_gpu_enable_llvm_module_compilation_parallelism=true'
# name: (form, XLA_FLAGS), in the order the probe tries them: autotuning off
# first (the quickest compile expected; the epoch scan trained fastest on the
# H200), then XLA's default (level 4) and levels 1 and 2, then other forms.
CASES = {
    'epoch-autotune0': ('epoch', AUTOTUNE.format(0)),
    'epoch': ('epoch', ''),
    'epoch-autotune1': ('epoch', AUTOTUNE.format(1)),
    'epoch-autotune2': ('epoch', AUTOTUNE.format(2)),
    'step-autotune0': ('step', AUTOTUNE.format(0)),
    'step': ('step', ''),
    'chunk-autotune0-llvmpar': ('chunk', f'{AUTOTUNE.format(0)} '
                                         f'{LLVM_PARALLEL}'),
}


def case_flags(case, train_flags):
  """(training flags with the case's --steps_per_call, its XLA_FLAGS)."""
  form, xla = CASES[case]
  kept = [f for f in train_flags if not f.startswith('--steps_per_call')]
  return kept + [f'--steps_per_call={FORMS[form]}'], xla


def run_config(flagfile, extra=()):
  """The `Config` of a flagfile with `extra` flags on top (as the run's)."""
  fv = flags.FlagValues()
  cli.define_config_flags(fv)
  try:
    fv(['run', f'--flagfile={flagfile}', *extra])
  except flags.Error as e:
    raise UserError(f'{flagfile} with {" ".join(extra)}: {e}') from e
  return config_lib.Config(**{f.name: fv[f.name].value
                              for f in dataclasses.fields(config_lib.Config)})


def program_id(flagfile, extra, xla_flags):
  """The ledger's name of a program: its key under these XLA_FLAGS (the
  compilation cache's key includes them)."""
  key = (sweep_lib.program_key(flagfile, extra), ' '.join(xla_flags.split()))
  return hashlib.sha256(repr(key).encode()).hexdigest()[:16]


def epochs_done(run_dir):
  """Epochs a run would resume after: its checkpoint's history, else 0."""
  history = os.path.join(run_dir, results.HISTORY)
  if not (os.path.exists(os.path.join(run_dir, CHECKPOINT)) and
          os.path.exists(history)):
    return 0
  return len(results.read_csv(history))


class Ledger:
  """`ledger.json` in a folder: {'image', 'choice', 'startup_s', 'programs'}.

  `programs` maps `program_id` to {'label', 'compile_s', 'epoch_s'} once the
  program compiled, or {'label', 'cut_s'} while its compile was cut.
  """

  def __init__(self, folder):
    self.path = os.path.join(folder, LEDGER)
    self.reset()
    if os.path.exists(self.path):
      with open(self.path) as f:
        self.data.update(json.load(f))

  def reset(self):
    """Forgets everything (another image: the cache entries never hit)."""
    self.data = {'image': None, 'choice': None, 'startup_s': None,
                 'programs': {}}

  def save(self):
    """Writes ledger.json atomically."""
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    results.write_json(self.path, self.data)

  @property
  def programs(self):
    """{program id: its measurements}."""
    return self.data['programs']

  def compiled(self, pid):
    """Whether the program compiled (so the cache beside holds it)."""
    return 'compile_s' in self.programs.get(pid, {})

  def record(self, pid, label, compile_s=None, epoch_s=None, cut_s=None):
    """Adds a measurement; a compiled program keeps its compile time."""
    entry = self.programs.setdefault(pid, {'label': label})
    if compile_s is not None and 'compile_s' not in entry:
      entry['compile_s'] = round(compile_s, 2)
      entry.pop('cut_s', None)
    if epoch_s is not None:
      entry['epoch_s'] = round(epoch_s, 3)
    if cut_s is not None and 'compile_s' not in entry:
      entry['cut_s'] = round(max(cut_s, entry.get('cut_s', 0)), 1)

  def observe(self, pid, label, rows):
    """Records a run's history rows (per-epoch 'seconds', the first with the
    compile or cache load in it); a program new to the ledger compiled in
    the run's first epoch."""
    secs = [float(r['seconds']) for r in rows if r.get('seconds')]
    if not secs:
      return
    epoch_s = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
    first = secs[0] - epoch_s if len(secs) > 1 else secs[0]
    self.record(pid, label, compile_s=first, epoch_s=epoch_s)

  def expected_s(self, pid, epochs):
    """Seconds a run of `pid` with `epochs` left is expected to take, from
    its start; None while nothing is measured."""
    known = [p for p in self.programs.values() if 'compile_s' in p]
    if not known or self.data['startup_s'] is None:
      return None
    own = self.programs.get(pid, {})
    if 'compile_s' in own:
      compile_s = 0.0
    else:
      compile_s = max([p['compile_s'] for p in known] + [own.get('cut_s', 0)])
    epoch_s = own.get('epoch_s') or max(p['epoch_s'] for p in known)
    return self.data['startup_s'] + compile_s + epochs * epoch_s


class Rule:
  """The start rule for `sweep_lib.run_all`, over a ledger folder: runs get
  `extra` training flags and the current XLA_FLAGS."""

  def __init__(self, folder, extra=(), xla_flags=None):
    self.ledger = Ledger(folder)
    self.extra = list(extra)
    self.xla = (os.environ.get('XLA_FLAGS', '') if xla_flags is None
                else xla_flags)
    self._epochs = {}

  def pid(self, run):
    """The run's `program_id` under this rule's flags."""
    return program_id(run.flagfile, self.extra, self.xla)

  def known(self, run):
    """Whether the run's programs compiled before (the cache has them)."""
    return self.ledger.compiled(self.pid(run))

  def expected_s(self, run):
    """The start rule's expected seconds of `run`, or None (no rule)."""
    if run not in self._epochs:
      self._epochs[run] = run_config(run.flagfile, self.extra).epochs
    left = max(self._epochs[run] - epochs_done(run.run_dir), 0)
    return self.ledger.expected_s(self.pid(run), left)

  def observe(self, run, cut_after=None):
    """Records the run's history so far into the ledger (and saves it); a
    run cut `cut_after` seconds after its start before its first epoch
    ended records how long its program's compile ran, at least."""
    path = os.path.join(run.run_dir, results.HISTORY)
    label = f'{run.experiment}/{run.row}'
    if os.path.exists(path):
      self.ledger.observe(self.pid(run), label, results.read_csv(path))
    elif cut_after is not None:
      startup = self.ledger.data['startup_s'] or 0
      self.ledger.record(self.pid(run), label,
                         cut_s=max(cut_after - startup, 0))
    self.ledger.save()


def plan_cost(todo, extra, xla, ledger, compile_s, epoch_s):
  """Expected device seconds of the rest of the plan under one case:
  its programs not yet compiled x compile_s + its epochs left x epoch_s."""
  new = {program_id(r.flagfile, extra, xla) for r in todo}
  new = {p for p in new if not ledger.compiled(p)}
  epochs = sum(max(run_config(r.flagfile, extra).epochs
                   - epochs_done(r.run_dir), 0) for r in todo)
  return len(new) * compile_s + epochs * epoch_s


def choose(measured, todo, train_flags, ledger):
  """The form rule: the case of least `plan_cost`, earlier cases winning
  ties; None when no case compiled.

  Args:
    measured: [(case, {'compile_s', 'epoch_s'} or None)] in probe order.
    todo: the plan's unfinished runs.
    train_flags: the runs' training flags (without --steps_per_call).
    ledger: a `Ledger` holding what the probe compiled.

  Returns:
    (case or None, {case: cost}).
  """
  costs = {}
  for case, m in measured:
    if m is not None:
      extra, xla = case_flags(case, train_flags)
      costs[case] = plan_cost(todo, extra, xla, ledger, m['compile_s'],
                              m['epoch_s'])
  best = min(costs, key=lambda c: (costs[c], list(costs).index(c)),
             default=None)
  return best, costs
