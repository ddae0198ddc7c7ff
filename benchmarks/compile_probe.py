r"""Compile time and step time of small Inception's training step, per form.

  bash .device/on-device.sh python benchmarks/compile_probe.py   # H200
  KERAS_BACKEND=jax python benchmarks/compile_probe.py --train_size=1280 \
      --eval_batch_size=256                                       # CPU check

Each case runs in its own process (XLA reads XLA_FLAGS once, and an unknown
flag aborts the process), all cases at once under one deadline; a case that
is not done by then prints "timeout". The step times are taken one case at a
time (a file lock), but other cases may still be compiling or autotuning on
the same GPU then: read them as a ranking, and take the clean per-epoch time
from benchmarks/speed.py.

Forms of the training program (`JaxTrainer`'s --steps_per_call):
  epoch  a `lax.scan` over a whole epoch (390 steps), one call per epoch
  step   a jitted single step called from a Python loop
  chunk  a `lax.scan` over --chunk steps (rounded to a divisor of 390)
The evaluation program (one batch of --eval_batch_size) is timed with each.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

_TRAIN_SIZE = flags.DEFINE_integer('train_size', 50_000, 'Training images '
                                   '(synthetic: content does not matter).')
_EVAL_BATCH = flags.DEFINE_integer('eval_batch_size', 2500, 'Eval batch.')
_CHUNK = flags.DEFINE_integer('chunk', 30, 'Steps per call of the chunk form.')
_MODEL = flags.DEFINE_string('model', 'inception_small', 'Model.')
_MIXED = flags.DEFINE_bool('mixed_precision', True, 'bfloat16 compute.')
_TIMED_CALLS = flags.DEFINE_integer('timed_calls', 2, 'Calls timed per case.')
_DEADLINE = flags.DEFINE_integer('deadline_s', 150, 'Seconds for all cases.')
_PARALLEL = flags.DEFINE_integer('parallel', 0, 'Cases at once (0: all; '
                                 'a 2-core CPU check wants 1).')
_CASES = flags.DEFINE_list('cases', None, 'Only these case names.')
_CASE = flags.DEFINE_string('case', None, 'Internal: run one case.')
_LOCK = flags.DEFINE_string('lock', None, 'Internal: the timing lock file.')

AUTOTUNE_OFF = '--xla_gpu_autotune_level=0'
FUSION_OFF = '--xla_gpu_experimental_enable_fusion_autotuner=false'
LLVM_PARALLEL = '--xla_gpu_enable_llvm_module_compilation_parallelism=true'
# name: (form, XLA_FLAGS). The GPU flags are ignored by a CPU-only jaxlib.
CASES = {
    'epoch': ('epoch', ''),
    'epoch-autotune0': ('epoch', AUTOTUNE_OFF),
    'epoch-nofusiontune': ('epoch', FUSION_OFF),
    'step': ('step', ''),
    'step-autotune0': ('step', AUTOTUNE_OFF),
    'chunk': ('chunk', ''),
    'chunk-nofusiontune-llvmpar': ('chunk', f'{FUSION_OFF} {LLVM_PARALLEL}'),
}


def run_case(form):
  """Compiles and times one form in this process; returns a dict."""
  import keras
  import numpy as np
  from zhang2017.data import datasets as data
  from zhang2017.training import distribute
  from zhang2017.training import backends
  from zhang2017.data import batches
  from zhang2017.models import paper_models as models
  from zhang2017.training import train_lib
  distribute.setup(0, _MIXED.value)
  ds = data.synthetic(_TRAIN_SIZE.value, _EVAL_BATCH.value)
  model = models.build(_MODEL.value, 10, ds.x_train.shape[1:])
  opt = keras.optimizers.SGD(0.1, momentum=0.9)
  steps = _TRAIN_SIZE.value // 128
  per_call = {'epoch': 0, 'step': 1, 'chunk': _CHUNK.value}[form]
  k = batches.chunk_steps(steps, per_call)
  tr = backends.JaxTrainer(model, opt, ds, 128, _EVAL_BATCH.value,
                           steps_per_call=k)
  idx = batches.epoch_batches(train_lib.epoch_order(0, 0, len(ds.y_train)),
                              128)[:k]
  state = tr._read_state()  # pylint: disable=protected-access
  t0 = time.time()
  train = tr._train.lower(state, tr._x, tr._y, idx).compile()  # pylint: disable=protected-access
  compile_train = time.time() - t0
  t0 = time.time()
  tr._eval.lower(state[0], state[1], tr._eval_x['test'][:_EVAL_BATCH.value]  # pylint: disable=protected-access
                 ).compile()
  compile_eval = time.time() - t0
  print('COMPILED ' + json.dumps({'steps_per_call': k,
                                  'compile_train_s': compile_train,
                                  'compile_eval_s': compile_eval}), flush=True)
  with open(_LOCK.value, 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # One case on the device at a time.
    state, _ = train(state, tr._x, tr._y, idx)  # pylint: disable=protected-access
    np.asarray(state[0][0])
    t0 = time.time()
    for _ in range(_TIMED_CALLS.value):
      state, (loss, _) = train(state, tr._x, tr._y, idx)  # pylint: disable=protected-access
    np.asarray(loss)
    step_ms = (time.time() - t0) / (_TIMED_CALLS.value * k) * 1000
  return {'steps_per_call': k, 'compile_train_s': compile_train,
          'compile_eval_s': compile_eval, 'step_ms': step_ms,
          'epoch_s_est': step_ms * steps / 1000}


def main(argv):
  del argv
  if _CASE.value:
    print('RESULT ' + json.dumps(run_case(CASES[_CASE.value][0])), flush=True)
    return
  import jax
  print(f'jax {jax.__version__}, devices {jax.devices()}, model '
        f'{_MODEL.value}, {_TRAIN_SIZE.value} images, batch 128, '
        f'mixed_precision {_MIXED.value}', flush=True)
  names = _CASES.value or list(CASES)
  deadline = time.time() + _DEADLINE.value
  lock = tempfile.NamedTemporaryFile(prefix='probe-lock-')
  passthrough = [a for a in sys.argv[1:] if not a.startswith('--cases')]

  logs = {}

  def start(name):
    env = {**os.environ, 'XLA_FLAGS': CASES[name][1],
           'XLA_PYTHON_CLIENT_MEM_FRACTION': '0.1', 'PYTHONUNBUFFERED': '1'}
    # A file, not a pipe: a chatty child never blocks on a full pipe.
    logs[name] = tempfile.TemporaryFile('w+')
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), f'--case={name}',
         f'--lock={lock.name}', *passthrough], env=env,
        stdout=logs[name], stderr=subprocess.STDOUT, text=True)

  width = _PARALLEL.value or len(names)
  procs = {name: start(name) for name in names[:width]}
  print(f'{"case":<28}{"steps/call":>11}{"compile s":>10}{"eval s":>8}'
        f'{"ms/step":>9}{"s/epoch":>9}  XLA_FLAGS', flush=True)
  for i, name in enumerate(names):
    if name not in procs:
      procs[name] = start(name)
    p = procs[name]
    try:
      p.wait(timeout=max(1, deadline - time.time()))
      timed_out = False
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
      timed_out = True
    logs[name].seek(0)
    out = logs[name].read() + ('\nTIMEOUT' if timed_out else '')
    res = [l for l in out.splitlines() if l.startswith('RESULT ')]
    compiled = [l for l in out.splitlines() if l.startswith('COMPILED ')]
    if res:
      r = json.loads(res[-1][len('RESULT '):])
      print(f'{name:<28}{r["steps_per_call"]:>11}{r["compile_train_s"]:>10.1f}'
            f'{r["compile_eval_s"]:>8.1f}{r["step_ms"]:>9.2f}'
            f'{r["epoch_s_est"]:>9.2f}  {CASES[name][1]}', flush=True)
    elif compiled:  # Compiled, then ran out of time while timing.
      r = json.loads(compiled[-1][len('COMPILED '):])
      print(f'{name:<28}{r["steps_per_call"]:>11}{r["compile_train_s"]:>10.1f}'
            f'{r["compile_eval_s"]:>8.1f}{"timeout":>9}{"":>9}  '
            f'{CASES[name][1]}', flush=True)
    else:
      why = 'timeout' if out.endswith('TIMEOUT') else f'exit {p.returncode}'
      tail = [l for l in out.strip().splitlines() if l.strip()][-1:] or ['']
      print(f'{name:<28}{why:>11}  {CASES[name][1]}  {tail[0][:120]}',
            flush=True)
    nxt = i + width
    if nxt < len(names) and time.time() < deadline:
      procs[names[nxt]] = start(names[nxt])


if __name__ == '__main__':
  app.run(main)
