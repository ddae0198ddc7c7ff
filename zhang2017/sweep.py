r"""Runs an experiment's flagfiles, one `zhang2017.train` process per run.

  python -m zhang2017.sweep --experiment=table1 --list
  python -m zhang2017.sweep --experiment=fig1bc --rows=mlp_1x512_p00,... \
      --seeds=3 --parallel=2
  python -m zhang2017.sweep --experiment=conv --list   # every conv-net run
  python -m zhang2017.sweep --experiment=conv --parallel=4 \
      --compilation_cache=/tmp/jax-cache --time_limit=480 --pack_to=$OUT

On a Slurm cluster (one job array, one task per unfinished run; run folders,
flagfiles and this checkout on storage every node shares):
  python -m zhang2017.sweep --experiment=table1 --seeds=3 --launcher=slurm \
      --slurm_gpus=1 --slurm_cpus=8 --slurm_mem=32G --slurm_time=720

Run folders are results/<experiment>/<row>/seed<k>/. A run whose result.json
exists is skipped, an interrupted one resumes from its checkpoint, so a killed
sweep started again finishes only what is missing. Each run's output goes to
train.log in its folder.
"""

import os
import re
import signal
import sys

from absl import flags

from zhang2017 import cli
from zhang2017.training import results
from zhang2017.sweeps import deadline
from zhang2017.sweeps import slurm_lib
from zhang2017.sweeps import sweep_lib
from zhang2017.errors import UserError

_EXPERIMENT = flags.DEFINE_string(
    'experiment', None, 'Folder of flags/, e.g. table1, fig1bc; or a plan '
    'across experiments: conv (every CIFAR-10 conv-net run of the paper).')
_LIST = flags.DEFINE_bool('list', False, 'Print the runs and exit.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds per row (0 .. seeds-1).',
                              lower_bound=1, upper_bound=1000)
_ROWS = flags.DEFINE_list('rows', None, 'Only these row ids.')
_PARALLEL = flags.DEFINE_integer('parallel', 1, 'local: runs at once.',
                                 lower_bound=1)
_MEMORY_FRACTION = flags.DEFINE_float(
    'memory_fraction', None, 'GPU memory fraction per run (JAX: '
    'XLA_PYTHON_CLIENT_MEM_FRACTION; TF: allow growth).', lower_bound=0.01,
    upper_bound=1.0)
_RESULTS_DIR = flags.DEFINE_string('results_dir', None,
                                   'Default: <repo>/results.')
_FLAGS_DIR = flags.DEFINE_string('flags_dir', None, 'Default: <repo>/flags.')
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', None, 'JAX: a persistent compilation cache folder '
    'shared by every run (and XLA\'s autotuning results), so each program '
    'compiles once per sweep.')
_TIME_LIMIT = flags.DEFINE_float(
    'time_limit', None, 'local: seconds; then running runs are killed (no '
    'result.json; they resume when started again) and none is started.',
    lower_bound=1)
_PACK_TO = flags.DEFINE_string(
    'pack_to', None, 'local: pack the result.json, history.csv and '
    'examples.npz of runs this sweep finished into at most 2 results-<i>.tgz '
    'files of at most 16 MiB here (paths relative to --results_dir), again '
    'after every run that ends.')
_LEDGER_DIR = flags.DEFINE_string(
    'ledger_dir', None, 'local, with --time_limit: the folder of ledger.json, '
    'the measured compile and epoch times per program (benchmarks/'
    'compile_probe.py writes the first; each run adds its own). A run starts '
    'only if its expected time fits in the time left (zhang2017/sweeps/'
    'deadline.py), and programs the ledger has need no first-epoch wait.')
_MAX_COMPILING = flags.DEFINE_integer(
    'max_compiling', 2, 'local: runs of programs not yet compiled in this '
    'sweep that may compile at once.', lower_bound=1)
_TRAIN_FLAGS = flags.DEFINE_list(
    'train_flags', [], 'Extra zhang2017.train flags for every run, e.g. '
    '--train_flags=--mixed_precision,--eval_batch_size=5000.')
_LAUNCHER = flags.DEFINE_enum(
    'launcher', 'local', ['local', 'slurm'], 'local: processes on this '
    'machine (--parallel, --time_limit, --max_compiling, --pack_to). slurm: '
    'one Slurm job array through submitit, one task per unfinished run, then '
    'exit (--wait to wait; --slurm_* flags); the run folders '
    '(--results_dir), the flagfiles and this checkout with its Python must be '
    'on storage every node shares, at the same paths. Running the same '
    'command again submits what is unfinished; those runs resume.')
_WAIT = flags.DEFINE_bool(
    'wait', False, 'slurm: wait until the job array has ended, printing '
    'progress; exit status 2 if a run did not finish.')
_SLURM_PARTITION = flags.DEFINE_string(
    'slurm_partition', None, 'slurm: partition (default: the cluster\'s).')
_SLURM_TIME = flags.DEFINE_integer(
    'slurm_time', 240, 'slurm: time limit of a task, minutes. Warned 90 s '
    'before it, a task is requeued (at most 3 times) and resumes.',
    lower_bound=1)
_SLURM_GPUS = flags.DEFINE_integer('slurm_gpus', 0, 'slurm: GPUs per task.',
                                   lower_bound=0)
_SLURM_CPUS = flags.DEFINE_integer('slurm_cpus', 1, 'slurm: CPUs per task.',
                                   lower_bound=1)
_SLURM_MEM = flags.DEFINE_string(
    'slurm_mem', None, 'slurm: memory per task as sbatch --mem takes it, '
    'e.g. 16G (default: the cluster\'s).')
_SLURM_MAX_RUNNING = flags.DEFINE_integer(
    'slurm_max_running', 256, 'slurm: at most this many tasks at once.',
    lower_bound=1)
_SLURM_SBATCH = flags.DEFINE_list(
    'slurm_sbatch', [], 'slurm: more sbatch options, name=value or a bare '
    'name, e.g. --slurm_sbatch=account=lab,qos=high,exclusive.')
flags.register_validator(
    'slurm_mem', lambda v: v is None or re.fullmatch(r'\d+[KMGT]?', v),
    '--slurm_mem takes a number with an optional unit K, M, G or T, e.g. 16G')
flags.register_validator(
    'slurm_sbatch',
    lambda v: all(re.fullmatch(r'[a-z][a-z0-9-]*(=.+)?', o) for o in v),
    '--slurm_sbatch takes sbatch option names without dashes, name=value or '
    'name, e.g. account=lab,exclusive')
_LOCAL_ONLY = ('parallel', 'time_limit', 'max_compiling', 'pack_to',
               'ledger_dir')
_SLURM_ONLY = ('wait', 'slurm_partition', 'slurm_time', 'slurm_gpus',
               'slurm_cpus', 'slurm_mem', 'slurm_max_running', 'slurm_sbatch')


def _exit_on_sigterm(signum, frame):
  del frame
  sys.exit(128 + signum)  # Unwinds run_all, which stops its runs.


def main(argv):
  del argv
  signal.signal(signal.SIGTERM, _exit_on_sigterm)
  if not _EXPERIMENT.value:
    raise UserError('--experiment is required, e.g. --experiment=table1')
  launcher = _LAUNCHER.value
  other = {'local': 'slurm', 'slurm': 'local'}[launcher]
  given = [f'--{n}' for n in (_LOCAL_ONLY if launcher == 'slurm' else
                              _SLURM_ONLY) if flags.FLAGS[n].present]
  if given:
    raise UserError(f'{", ".join(given)}: only for --launcher={other}; drop '
                    f'{"it" if len(given) == 1 else "them"} or use '
                    f'--launcher={other}')
  cli.check_input_folder('flags_dir', _FLAGS_DIR.value,
                         'holding <experiment>/<row>.flags')
  for flag in ('results_dir', 'pack_to', 'compilation_cache', 'ledger_dir'):
    if flags.FLAGS[flag].value:  # Each run would fail on it, one by one.
      cli.check_output_folder(flag, flags.FLAGS[flag].value)
  runs = sweep_lib.plan(_EXPERIMENT.value, _SEEDS.value, _ROWS.value, _FLAGS_DIR.value,
              _RESULTS_DIR.value)
  if _LIST.value:
    for r in runs:
      state = 'done' if results.load(r.run_dir) else 'todo'
      also = f' (also {", ".join(r.also)})' if r.also else ''
      print(f'{r.experiment}/{r.row} seed={r.seed} [{state}] '
            f'{os.path.relpath(r.flagfile, results.ROOT)}{also}')
    print(f'{len(runs)} runs')
    return
  env = {}
  if _MEMORY_FRACTION.value:
    env = {'XLA_PYTHON_CLIENT_MEM_FRACTION': str(_MEMORY_FRACTION.value),
           'TF_FORCE_GPU_ALLOW_GROWTH': 'true'}
  if _COMPILATION_CACHE.value:
    env.update({
        'JAX_COMPILATION_CACHE_DIR': os.path.abspath(_COMPILATION_CACHE.value),
        'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
        'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES': '-1'})
  results_dir = _RESULTS_DIR.value or os.path.join(results.ROOT, 'results')
  if launcher == 'slurm':
    _slurm(runs, env, results_dir)
    return

  # Only what this sweep finishes goes back (the rest is there already).
  new = [r for r in runs if results.load(r.run_dir) is None]

  def pack():
    if _PACK_TO.value:
      return sweep_lib.pack(new, results_dir, _PACK_TO.value)
    return []

  rule = None
  if _LEDGER_DIR.value:
    rule = deadline.Rule(_LEDGER_DIR.value, _TRAIN_FLAGS.value)
  try:
    failed, cut = sweep_lib.run_all(
        runs, _PARALLEL.value, _TRAIN_FLAGS.value, env,
        time_limit=_TIME_LIMIT.value, max_compiling=_MAX_COMPILING.value,
        on_done=pack, rule=rule)
  finally:  # Also when interrupted: what finished goes into the archives.
    paths = pack()
  if _PACK_TO.value:
    n = sum(results.load(r.run_dir) is not None for r in new)
    print(f'packed {n} runs finished by this sweep (of {len(runs)}) into '
          f'{", ".join(os.path.basename(p) for p in paths) or "nothing"}')
  if cut:
    print(f'{cut} runs cut by --time_limit; start the same command again to '
          'resume them')
  if failed:
    cli.fail(f'{failed} runs failed; see their train.log, then rerun the '
             'same command to retry them')


def _slurm(runs, env, results_dir):
  """Submits the unfinished runs as one Slurm job array; waits if --wait."""
  slurm_lib.check_available()
  params = {'time': _SLURM_TIME.value, 'cpus_per_task': _SLURM_CPUS.value,
            'array_parallelism': _SLURM_MAX_RUNNING.value,
            'job_name': f'zhang2017-{_EXPERIMENT.value}'}
  if _SLURM_PARTITION.value:
    params['partition'] = _SLURM_PARTITION.value
  if _SLURM_GPUS.value:
    params['gpus_per_task'] = _SLURM_GPUS.value
  if _SLURM_MEM.value:
    params['mem'] = _SLURM_MEM.value
  if _SLURM_SBATCH.value:
    params['additional_parameters'] = dict(
        (o.split('=', 1) + [True])[:2] for o in _SLURM_SBATCH.value)
  job, tasks = slurm_lib.submit(
      runs, os.path.join(results_dir, '.submitit'), _TRAIN_FLAGS.value, env,
      **params)
  if job and not _WAIT.value:
    print(f'squeue -j {job} shows them; run the same command again once they '
          'have ended to submit what did not finish (it resumes)')
  if job and _WAIT.value:
    missing = slurm_lib.wait(job, tasks)
    if missing:
      cli.fail(f'{len(missing)} runs did not finish; see their train.log, '
               'then run the same command again to resume them')
    print(f'all {len(tasks)} runs finished')


if __name__ == '__main__':
  cli.run(main)
