r"""Runs an experiment's flagfiles, one `zhang2017.train` process per run.

  python -m zhang2017.sweep --experiment=table1 --list
  python -m zhang2017.sweep --experiment=fig1bc --rows=mlp_1x512_p00,... \
      --seeds=3 --parallel=2
  python -m zhang2017.sweep --experiment=conv --list   # every conv-net run
  python -m zhang2017.sweep --experiment=conv --parallel=4 \
      --compilation_cache=/tmp/jax-cache --time_limit=480 --pack_to=$OUT

Run folders are results/<experiment>/<row>/seed<k>/. A run whose result.json
exists is skipped, an interrupted one resumes from its checkpoint, so a killed
sweep started again finishes only what is missing. Each run's output goes to
train.log in its folder.
"""

import os
import signal
import sys

from absl import flags

from zhang2017 import cli
from zhang2017 import results
from zhang2017 import sweep_lib
from zhang2017.errors import UserError

_EXPERIMENT = flags.DEFINE_string(
    'experiment', None, 'Folder of flags/, e.g. table1, fig1bc; or a plan '
    'across experiments: conv (every CIFAR-10 conv-net run of the paper).')
_LIST = flags.DEFINE_bool('list', False, 'Print the runs and exit.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds per row (0 .. seeds-1).',
                              lower_bound=1, upper_bound=1000)
_ROWS = flags.DEFINE_list('rows', None, 'Only these row ids.')
_PARALLEL = flags.DEFINE_integer('parallel', 1, 'Runs at once.',
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
    'time_limit', None, 'Seconds; then running runs are killed (no '
    'result.json; they resume when started again) and none is started.',
    lower_bound=1)
_PACK_TO = flags.DEFINE_string(
    'pack_to', None, 'Pack finished runs\' result.json and history.csv into '
    'at most 6 results-<i>.tgz files of at most 16 MiB here (paths relative '
    'to --results_dir), again after every run that ends.')
_MAX_COMPILING = flags.DEFINE_integer(
    'max_compiling', 2, 'Runs of programs not yet compiled in this sweep '
    'that may compile at once.', lower_bound=1)
_TRAIN_FLAGS = flags.DEFINE_list(
    'train_flags', [], 'Extra zhang2017.train flags for every run, e.g. '
    '--train_flags=--mixed_precision,--eval_batch_size=5000.')


def _exit_on_sigterm(signum, frame):
  del frame
  sys.exit(128 + signum)  # Unwinds run_all, which stops its runs.


def main(argv):
  del argv
  signal.signal(signal.SIGTERM, _exit_on_sigterm)
  if not _EXPERIMENT.value:
    raise UserError('--experiment is required, e.g. --experiment=table1')
  cli.check_input_folder('flags_dir', _FLAGS_DIR.value,
                         'holding <experiment>/<row>.flags')
  for flag in ('results_dir', 'pack_to', 'compilation_cache'):
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

  def pack():
    if _PACK_TO.value:
      return sweep_lib.pack(runs, results_dir, _PACK_TO.value)
    return []

  try:
    failed, cut = sweep_lib.run_all(
        runs, _PARALLEL.value, _TRAIN_FLAGS.value, env,
        time_limit=_TIME_LIMIT.value, max_compiling=_MAX_COMPILING.value,
        on_done=pack)
  finally:  # Also when interrupted: what finished goes into the archives.
    paths = pack()
  if _PACK_TO.value:
    n = sum(results.load(r.run_dir) is not None for r in runs)
    print(f'packed {n} finished runs of {len(runs)} into '
          f'{", ".join(os.path.basename(p) for p in paths) or "nothing"}')
  if cut:
    print(f'{cut} runs cut by --time_limit; start the same command again to '
          'resume them')
  if failed:
    cli.fail(f'{failed} runs failed; see their train.log, then rerun the '
             'same command to retry them')


if __name__ == '__main__':
  cli.run(main)
