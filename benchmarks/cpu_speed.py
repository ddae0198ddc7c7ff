r"""CPU training and evaluation speed of every path, side by side, in one run.

  python benchmarks/cpu_speed.py | tee results/benchmarks/cpu_speed-$(date +%F).txt

For small Inception, small AlexNet and MLP 1x512 it times the project's own
code path (`train_lib.build_model`/`build_optimizer` + `backends.make`, then
`trainer.train_epoch` and `trainer.evaluate`, as a run calls them) on
TensorFlow fp32, TensorFlow mixed bfloat16 and JAX fp32, and, when `torch`
is importable, the same models in plain PyTorch (benchmarks/torch_models.py:
channels-last, SGD with momentum, fp32 and bf16 autocast). Data: random uint8
CIFAR-shaped images and labels. Each (path, model) runs in its own process
(the Keras backend and dtype policy are fixed at import): --warmup_steps
training steps and one evaluation batch first (tracing and compilation), then
--epochs timed epochs of --train_images (the median is reported) and one
timed evaluation pass over them.

Beside each speed: GFLOP/s achieved (training 3x the forward FLOPs of
convolutions and dense layers per image, evaluation 1x) and its fraction of
this machine's matrix-multiply ceiling, measured at the start of the same run
(best of --matmul_repeats products of two --matmul_size squares: fp32 the
best of numpy, TF and torch; bf16 the best of TF and torch). Ratios are
project / PyTorch at the same precision (JAX fp32 against PyTorch fp32).
Measure on a quiet machine: the load average is printed before and after.
"""

import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np

from zhang2017.data import batches
from zhang2017.training import config as config_lib

# path -> (framework, bf16)
PATHS = {'tf_fp32': ('tensorflow', False), 'tf_bf16': ('tensorflow', True),
         'jax_fp32': ('jax', False), 'torch_fp32': ('torch', False),
         'torch_bf16': ('torch', True)}

_MODELS = flags.DEFINE_list('models', ['inception_small', 'alexnet_small',
                                       'mlp_1x512'], 'Models to time.')
_PATHS = flags.DEFINE_list('paths', list(PATHS), 'Paths to time (torch_* '
                           'are skipped when torch is not importable).')
# Per model: an epoch of several seconds, so that per-epoch costs (a `fit`
# call) weigh about as much as in a 50,000-image epoch.
TRAIN_IMAGES = {'inception_small': 3000, 'alexnet_small': 6000,
                'mlp_1x512': 50_000}
_TRAIN_IMAGES = flags.DEFINE_integer(
    'train_images', None, 'Images per epoch, all evaluated too (full batches '
    f'only train); default per model: {TRAIN_IMAGES}.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Training batch.')
_EVAL_BATCH = flags.DEFINE_integer('eval_batch_size', 1000, 'Evaluation '
                                   'batch (a run\'s default).')
_EPOCHS = flags.DEFINE_integer('epochs', 3, 'Timed training epochs.')
_WARMUP = flags.DEFINE_integer('warmup_steps', 3, 'Untimed training steps.')
_MATMUL_SIZE = flags.DEFINE_integer('matmul_size', 2048, 'Ceiling: n of the '
                                    'n x n matrix product.')
_MATMUL_REPEATS = flags.DEFINE_integer('matmul_repeats', 5, 'Ceiling: tries.')
_TIMEOUT = flags.DEFINE_integer('worker_timeout', 3600, 'Seconds per process.')
_WORKER = flags.DEFINE_string('worker', None, 'Internal: "path:model" or '
                              '"ceiling:framework" runs in this process.')
_PASSED = [_MODELS, _PATHS, _TRAIN_IMAGES, _BATCH, _EVAL_BATCH, _EPOCHS,
           _WARMUP, _MATMUL_SIZE, _MATMUL_REPEATS]


def _images(name):
  return _TRAIN_IMAGES.value or TRAIN_IMAGES.get(name, 3000)


def _data(name):
  rng = np.random.default_rng(0)
  n, m = _images(name), _EVAL_BATCH.value
  image = lambda k: rng.integers(0, 256, (k, 32, 32, 3), np.uint8)
  return image(n), rng.integers(0, 10, n), image(m), rng.integers(0, 10, m)


def _timed(n, train_epoch, evaluate):
  """Warm-up, then per-epoch seconds and one evaluation pass's seconds."""
  # Orders as train_lib.epoch_order(0, e, n) (not imported: it needs Keras).
  perm = np.random.default_rng([0, 3, 0]).permutation(n)
  t0 = time.perf_counter()
  train_epoch(0, perm[:_WARMUP.value * _BATCH.value])
  evaluate('test')  # One batch: traces/compiles the evaluation program.
  warmup = time.perf_counter() - t0
  epochs = []
  for e in range(1, _EPOCHS.value + 1):
    t0 = time.perf_counter()
    train_epoch(e, np.random.default_rng([0, 3, e]).permutation(n))
    epochs.append(time.perf_counter() - t0)
  t0 = time.perf_counter()
  evaluate('train')
  return warmup, epochs, time.perf_counter() - t0


def _project(name, bf16):
  """The project's path for the current Keras backend."""
  import keras
  from zhang2017.training import backends
  from zhang2017.data import datasets as data
  from zhang2017.training import distribute
  from zhang2017.models import paper_models as models
  from zhang2017.training import train_lib
  from benchmarks.flops import forward_flops
  x, y, xt, yt = _data(name)
  ds = data.Dataset('random', x, y, xt, yt, 10, 'random uint8')
  cfg = config_lib.Config(model=name, mixed_precision=bf16,
                          batch_size=_BATCH.value,
                          eval_batch_size=_EVAL_BATCH.value)
  distribute.setup(cfg.seed, cfg.mixed_precision)
  model = train_lib.build_model(cfg, 10, x.shape[1:])
  optimizer = train_lib.build_optimizer(cfg, len(x) // cfg.batch_size)
  trainer = backends.make(model, optimizer, ds, cfg.batch_size,
                          cfg.eval_batch_size, None, cfg.steps_per_call)
  return (_timed(len(x), trainer.train_epoch, trainer.evaluate),
          forward_flops(model), models.count_params(model),
          f'keras {keras.__version__} {keras.backend.backend()}')


def _torch(name, bf16):
  """Plain PyTorch: the same models, batches and evaluation batches."""
  import torch
  from benchmarks import torch_models
  x, y, xt, yt = (torch.from_numpy(a) for a in _data(name))
  model = torch_models.build(name)
  cfg = config_lib.Config(model=name)
  opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=cfg.lr, momentum=cfg.momentum)
  loss_fn = torch.nn.CrossEntropyLoss()
  autocast = lambda: torch.autocast('cpu', torch.bfloat16, enabled=bf16)

  def train_epoch(epoch, perm):
    del epoch
    model.train()
    losses, correct = [], 0
    for idx in torch.from_numpy(batches.epoch_batches(perm, _BATCH.value)):
      xb, yb = x[idx], y[idx]
      with autocast():
        logits = model(xb)
      loss = loss_fn(logits.float(), yb)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      losses.append(loss.detach())
      correct += int((logits.detach().argmax(1) == yb).sum())
    return float(torch.stack(losses).mean()), correct

  def evaluate(split):
    model.eval()
    data = x if split == 'train' else xt
    data = torch.from_numpy(batches.pad_to_batches(data.numpy(),
                                                   _EVAL_BATCH.value))
    with torch.inference_mode(), autocast():
      return [model(b).float().numpy() for b in data.split(_EVAL_BATCH.value)]

  return (_timed(len(x), train_epoch, evaluate),
          torch_models.forward_flops(model, x), torch_models.count_params(model),
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')


def _ceiling(framework):
  """Best GFLOP/s of an n x n matrix product per precision, per library."""
  n, out = _MATMUL_SIZE.value, {}
  a, b = (np.random.default_rng(i).random((n, n), np.float32) for i in (1, 2))

  def best(name, fn):
    fn()
    times = []
    for _ in range(_MATMUL_REPEATS.value):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
    out[name] = 2 * n ** 3 / min(times) / 1e9

  if framework == 'tensorflow':
    import tensorflow as tf
    best('numpy fp32', lambda: a @ b)
    ta, tb = tf.constant(a), tf.constant(b)
    best('tf fp32', lambda: tf.matmul(ta, tb).numpy())
    ha, hb = tf.cast(ta, tf.bfloat16), tf.cast(tb, tf.bfloat16)
    best('tf bf16', lambda: tf.matmul(ha, hb).numpy())
  else:
    import torch
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    best('torch fp32', lambda: ta @ tb)
    ha, hb = ta.bfloat16(), tb.bfloat16()
    best('torch bf16', lambda: ha @ hb)
  return out


def _worker(spec):
  kind, arg = spec.split(':')
  if kind == 'ceiling':
    return _ceiling(arg)
  framework, bf16 = PATHS[kind]
  (warmup, epochs, eval_s), flops, params, lib = (
      _torch if framework == 'torch' else _project)(arg, bf16)
  n = _images(arg)
  trained = n // _BATCH.value * _BATCH.value  # Full batches.
  evaluated = len(batches.pad_to_batches(np.empty(n), _EVAL_BATCH.value))
  return {'train_images': n,
          'train_img_s': trained / statistics.median(epochs),
          'eval_img_s': evaluated / eval_s, 'epoch_s': epochs,
          'warmup_s': warmup, 'eval_s': eval_s, 'forward_flops': flops,
          'params': params, 'lib': lib}


def _run(spec, framework):
  """Runs one worker process; its result dict (or {'error': ...})."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  if framework != 'torch':
    env['KERAS_BACKEND'] = framework
  cmd = [sys.executable, os.path.abspath(__file__), f'--worker={spec}']
  for f in _PASSED:
    if f.value is not None:
      v = f.value
      cmd.append(f'--{f.name}={",".join(v) if isinstance(v, list) else v}')
  load = os.getloadavg()[0]
  try:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=_TIMEOUT.value, check=False)
    lines = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    out = (json.loads(lines[-1][7:]) if lines else
           {'error': f'exit {p.returncode}: {p.stderr.strip()[-2000:]}'})
  except subprocess.TimeoutExpired:
    out = {'error': f'timeout after {_TIMEOUT.value} s'}
  out['load'] = [round(load, 2), round(os.getloadavg()[0], 2)]
  print(f'raw {spec} {json.dumps(out)}', flush=True)
  return out


def _fmt(v, width, spec):
  return f'{format(v, spec) if v is not None else "-":>{width}}'


def main(argv):
  del argv
  if _WORKER.value:
    print('RESULT ' + json.dumps(_worker(_WORKER.value)), flush=True)
    return
  from zhang2017.training import results
  has_torch = importlib.util.find_spec('torch') is not None
  paths = [p for p in _PATHS.value if has_torch or PATHS[p][0] != 'torch']
  cpu = results.cpu_description()
  print(f'{datetime.datetime.now():%Y-%m-%d %H:%M}, commit '
        f'{results.git_commit()}, cpu: {cpu["model"]} ({cpu["cores_visible"]} '
        f'of {cpu["cores"]} cores), load average {os.getloadavg()}')
  print(f'random uint8 images ({_TRAIN_IMAGES.value or TRAIN_IMAGES} per '
        f'epoch), batch {_BATCH.value}, '
        f'{_WARMUP.value} warm-up steps, median of {_EPOCHS.value} epochs; '
        f'evaluation batch {_EVAL_BATCH.value}'
        + ('' if has_torch else '; torch not importable: no PyTorch rows'))
  ceil = {}
  for fw in ['tensorflow'] + (['torch'] if has_torch else []):
    ceil.update({k: v for k, v in _run(f'ceiling:{fw}', fw).items()
                 if isinstance(v, float)})
  peak = {p: max([v for k, v in ceil.items() if k.endswith(p)] or [None])
          for p in ('fp32', 'bf16')}
  res = {}
  for name in _MODELS.value:
    for path in paths:
      res[path, name] = _run(f'{path}:{name}', PATHS[path][0])
  print(f'\nmatmul ceiling (n={_MATMUL_SIZE.value}, GFLOP/s): ' + ', '.join(
      f'{k} {v:.0f}' for k, v in ceil.items()))
  print(f'\n{"model":<16}{"path":<11}{"train img/s":>12}{"GFLOP/s":>8}'
        f'{"ceil":>6}{"eval img/s":>11}{"GFLOP/s":>8}{"ceil":>6}'
        f'{"train/torch":>12}{"eval/torch":>11}')
  for (path, name), r in res.items():
    if 'error' in r:
      print(f'{name:<16}{path:<11}  failed: see its raw line')
      continue
    pk = peak['bf16' if PATHS[path][1] else 'fp32']
    ref = res.get(('torch_bf16' if PATHS[path][1] else 'torch_fp32', name))
    ok = ref and 'error' not in ref and PATHS[path][0] != 'torch'
    cells = []
    for key, mult in (('train_img_s', 3), ('eval_img_s', 1)):
      gf = r[key] * mult * r['forward_flops'] / 1e9
      cells.append(f'{r[key]:>{12 if mult == 3 else 11}.1f}{gf:>8.1f}'
                   f'{_fmt(gf / pk if pk else None, 6, ".0%")}')
    ratios = [_fmt(r[k] / ref[k] if ok else None, w, '.2f')
              for k, w in (('train_img_s', 12), ('eval_img_s', 11))]
    print(f'{name:<16}{path:<11}' + ''.join(cells) + ''.join(ratios))


if __name__ == '__main__':
  app.run(main)
