"""train_and_evaluate: one run of the paper's training protocol, for every
dataset (in memory: CIFAR-10, MNIST; streamed: ImageNet) and backend.

Each epoch: SGD over the (corrupted) training set in a seeded order, then
inference-mode evaluation of the training set (streamed ImageNet: a fixed
sample of 50,000 images) and of the clean test set. The run stops when
training accuracy reaches 100% (status `fitted`), when the loss stops being
finite (`diverged`) or at the epoch limit (`not_fitted`).

After every epoch the state (weights, optimizer, history, the per-example
records of `memorization.py`) goes to `checkpoint.npz` in the run directory,
so a run killed at any point and started again with the same flags resumes
from its last completed epoch and ends with the same numbers. A finished run
leaves result.json, history.csv and examples.npz.
"""

import contextlib
import dataclasses
import math
import os
import time

import keras
import numpy as np

from zhang2017.training import backends
from zhang2017.training import checkpoint
from zhang2017.training import config as config_lib
from zhang2017.data import corruption
from zhang2017.data import datasets as data_lib
from zhang2017.training import distribute
from zhang2017.data import imagenet
from zhang2017.training import memorization
from zhang2017.models import specs as model_specs
from zhang2017.models import registry
from zhang2017.training import progress
from zhang2017.training import results
from zhang2017.errors import UserError

def prepare_data(cfg):
  """Loads, subsets and corrupts the dataset: (dataset, record, changed).

  ImageNet's image folder is a `data.Dataset` of file names, subset and
  corrupted like the in-memory datasets; a prepared tfds ImageNet is
  corrupted inside its stream (`imagenet.TfdsImagenet`, `changed` None).
  """
  if cfg.dataset == 'imagenet':
    ds = imagenet.load(cfg.data_dir)
    if isinstance(ds, imagenet.TfdsImagenet):
      return ds.prepare(cfg)
  else:
    ds = data_lib.load(cfg.dataset, cfg.data_dir)
  ds = data_lib.subset(ds, cfg.train_size, cfg.seed, cfg.test_size)
  return corruption.apply(ds, cfg.labels, cfg.corrupt_prob, cfg.pixels,
                          cfg.seed)


def epoch_order(seed, epoch, n):
  """The training order of one epoch: same on every backend and on resume."""
  return np.random.default_rng([seed, 3, epoch]).permutation(n)


def epoch_status(losses, fitted, epoch, epochs):
  """A run's status after `epoch` (0-based): None while it goes on."""
  if not all(math.isfinite(l) for l in losses):
    return 'diverged'
  if fitted:
    return 'fitted'
  if epoch + 1 >= epochs:
    return 'not_fitted'
  return None


def build_model(cfg, num_classes, input_shape, strategy=None, model_fn=None):
  """The run's model (`registry.build`). Under a strategy of several
  replicas BatchNorm (a plug-in's too) is synchronized: statistics over the
  global batch, as on the paper's single GPU (not each replica's)."""
  return registry.build(cfg.model, input_shape, num_classes, cfg.kwargs,
                        random_crop=cfg.random_crop, augment=cfg.augment,
                        weight_decay=cfg.weight_decay, dropout=cfg.dropout,
                        seed=cfg.seed, model_fn=model_fn,
                        synchronized_bn=distribute.replicas(strategy) > 1)


def build_optimizer(cfg, steps_per_epoch):
  """SGD with momentum; learning rate lr * lr_decay ** epoch."""
  schedule = keras.optimizers.schedules.ExponentialDecay(
      cfg.lr, decay_steps=steps_per_epoch, decay_rate=cfg.lr_decay,
      staircase=True)
  return keras.optimizers.SGD(schedule, momentum=cfg.momentum)


def softmax_cross_entropy(logits, labels):
  """Per-example cross-entropy of integer labels under float logits (numpy)."""
  logits = logits.astype(np.float64)
  m = logits.max(axis=1, keepdims=True)
  lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
  return lse - logits[np.arange(len(labels)), labels]


def _evaluate(trainer, split):
  """(loss, top-1 correct mask, top-5 correct mask, margins) of one split;
  margins only for the training split (examples.npz), else None."""
  logits, labels = trainer.evaluate(split)
  k = min(5, logits.shape[1])
  top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
  return (float(softmax_cross_entropy(logits, labels).mean()),
          logits.argmax(axis=1) == labels, (top == labels[:, None]).any(1),
          memorization.margin(logits, labels) if split == 'train' else None)


def _check_output_dir(run_dir):
  try:
    os.makedirs(run_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create --output_dir={run_dir} ({e.strerror}); '
                    'choose a writable folder') from e
  if not os.access(run_dir, os.W_OK | os.X_OK):
    raise UserError(f'--output_dir={run_dir} is not writable; choose a '
                    'writable folder')


def train_and_evaluate(cfg, log=print, model_fn=None):
  """Runs (or resumes, or returns) the run that `cfg` describes.

  Args:
    cfg: a `config.Config`; `cfg.output_dir` is the run directory (default:
      `config.default_run_dir`); worker k > 0 of a multi-worker cluster
      writes to its `worker-k/` subfolder.
    log: where progress lines go.
    model_fn: a plug-in builder `fn(input_shape, num_classes, **kwargs)`
      (a notebook's): the run's model, recorded as `module:qualname`.

  Returns:
    The result dict, as written to `<output_dir>/result.json`.

  Raises:
    UserError: bad configuration, data or output directory; nothing is
      written in that case.
  """
  if model_fn is not None:
    cfg = dataclasses.replace(cfg, model=registry.qualified_name(model_fn))
  config_lib.validate(cfg)
  if model_fn is None and model_specs.is_plugin(cfg.model):
    registry.resolve(cfg.model)  # A bad plug-in fails before the data loads.
  if not cfg.output_dir:
    cfg = dataclasses.replace(cfg, output_dir=config_lib.default_run_dir(cfg))
  log(f'run folder: {cfg.output_dir}')
  start = time.time()
  worker = distribute.worker_index()
  run_dir = cfg.output_dir if worker == 0 else os.path.join(
      cfg.output_dir, f'worker-{worker}')
  done = results.load(run_dir)
  if done is not None:
    log(f'{run_dir} is complete (status {done["status"]}); not retraining')
    return done

  ds, record, changed = prepare_data(cfg)
  config_lib.check_sizes(cfg, ds.n_train, ds.n_test)
  precision = distribute.setup(cfg.seed, cfg.mixed_precision)
  strategy = distribute.get_strategy()
  n = ds.n_train
  steps_per_epoch = n // cfg.batch_size  # Full batches only (batches.py).
  with strategy.scope() if strategy else contextlib.nullcontext():
    model = build_model(cfg, ds.num_classes, ds.input_shape, strategy,
                        model_fn)
    optimizer = build_optimizer(cfg, steps_per_epoch)
  _check_output_dir(run_dir)  # After the model's checks: nothing written.
  inputs = (imagenet.inputs(ds, cfg) if cfg.dataset == 'imagenet' else None)
  trainer = backends.make(model, optimizer, ds, cfg.batch_size,
                          cfg.eval_batch_size, strategy, cfg.steps_per_call,
                          inputs)
  sample = inputs.eval_train_index if inputs is not None else None
  if changed is not None and sample is not None:
    changed = changed[sample]  # The evaluated sample's.
  params = registry.count_params(model)

  ckpt_path = os.path.join(run_dir, checkpoint.CHECKPOINT)
  meta = checkpoint.load(ckpt_path, model, optimizer, cfg.run_key())
  history = meta['history'] if meta else []
  # Wall time of earlier sessions of this run (killed and resumed).
  earlier = meta.get('wall_seconds', 0.0) if meta else 0.0
  status = meta['status'] if meta else None
  # Every commit and process that trained this run (queued runs continue
  # at newer heads across sittings).
  commits = list(meta.get('commits', [])) if meta else []
  if results.git_commit() not in commits:
    commits.append(results.git_commit())
  sittings = meta.get('sittings', 1) + 1 if meta else 1
  # Which commit and machine trained which epochs (runs move between hosts).
  sitting_log = results.earlier_sittings(meta)
  sitting = {'git_commit': results.git_commit(),
             'device': results.device_description(),
             'first_epoch': len(history) + 1}
  if meta:
    log(f'resuming {run_dir} after epoch {len(history)}')
  per_example = memorization.resume(meta, cfg.epochs, changed, sample)
  if per_example is None:
    log(f'no {memorization.FILE}: the checkpoint predates per-example records')
  log(f'{cfg.model} ({params:,} parameters) on {n} {cfg.dataset} images, '
      f'labels={cfg.labels} p={record["corrupt_prob"]} pixels={cfg.pixels}, '
      f'{precision}, {keras.backend.backend()} backend')
  if not history:
    progress.cpu_warning(cfg, steps_per_epoch * cfg.batch_size, n + ds.n_test, log)
  tb = progress.TensorBoard(os.path.join(run_dir, 'tb'))
  session_start, session_epochs = time.time(), 0
  while status is None:
    epoch = len(history)
    t0 = time.time()
    losses = trainer.train_epoch(epoch, epoch_order(cfg.seed, epoch, n))
    train, test = _evaluate(trainer, 'train'), _evaluate(trainer, 'test')
    row = results.epoch_row(epoch, steps_per_epoch, cfg, losses, train, test,
                            changed, time.time() - t0)
    history.append(row)
    if per_example:
      per_example.update(train[1], train[3])
    tb.write(row)
    session_epochs += 1
    elapsed = time.time() - session_start
    left = elapsed / session_epochs * (cfg.epochs - epoch - 1)
    log(f'epoch {row["epoch"]}/{cfg.epochs}  loss {row["train_loss"]:.4f}  '
        f'train acc {row["train_accuracy"]:.4f} (running '
        f'{row["train_accuracy_running"]:.4f})  test acc '
        f'{row["test_accuracy"]:.4f}  {row["seconds"]:.1f}s, elapsed '
        f'{progress.clock(elapsed)}, at most {progress.clock(left)} to the epoch limit')
    status = epoch_status((row['train_loss'], row['train_eval_loss']),
                          train[1].all(), epoch, cfg.epochs)
    results.write_csv(os.path.join(run_dir, results.HISTORY), history)
    checkpoint.save(ckpt_path, model, optimizer,
                    {'run_key': cfg.run_key(), 'history': history,
                     'status': status, 'commits': commits,
                     'sittings': sittings,
                     'eval_sizes': [len(train[1]), len(test[1])],
                     'sitting_log': sitting_log + [
                         {**sitting, 'last_epoch': len(history)}],
                     'wall_seconds': earlier + time.time() - start},
                    per_example.state() if per_example else None)

  if session_epochs:
    sizes = [len(train[1]), len(test[1])]
    sitting_log = sitting_log + [{**sitting, 'last_epoch': len(history)}]
  else:  # Resumed after its last epoch (killed before result.json): the
    # evaluated sizes from the checkpoint (older ones: from one more pass).
    sizes = meta.get('eval_sizes') or [
        len(_evaluate(trainer, s)[1]) for s in ('train', 'test')]
    sitting_log = sitting_log + [{
        'git_commit': sitting['git_commit'], 'device': sitting['device'],
        'note': 'no epochs: wrote the result from the last checkpoint'}]
  last = history[-1]
  fitted = status == 'fitted'
  result = {
      'status': status,
      'train_accuracy': last['train_accuracy'],
      'test_accuracy': last['test_accuracy'],
      'train_top5': last.get('train_top5'),
      'test_top5': last.get('test_top5'),
      'train_loss': last['train_eval_loss'],
      'test_loss': last['test_loss'],
      'train_accuracy_running': last.get('train_accuracy_running'),
      'train_accuracy_changed': last['train_accuracy_changed'],
      'train_accuracy_kept': last['train_accuracy_kept'],
      'epochs': len(history),
      'epochs_to_fit': len(history) if fitted else None,
      'steps_to_fit': last['step'] if fitted else None,
      'steps_per_epoch': steps_per_epoch,
      'train_size': n,
      'train_eval_size': sizes[0],
      'test_size': sizes[1],
      'params': params,
      'weights_fingerprint': checkpoint.weights_fingerprint(model),
      'flags': {**cfg.to_dict(), 'learning_rate': cfg.lr},
      'corruption': record,
      'provenance': results.provenance(ds.source,
                                       earlier + time.time() - start,
                                       precision),
  }
  result['provenance'].update(git_commits=commits, sittings=sittings)
  result['provenance']['sitting_log'] = sitting_log
  result['provenance']['train_seconds'] = round(
      sum(r['seconds'] for r in history), 2)
  # JAX: programs compiled in this process (1 + 1 unless shapes changed).
  result['provenance']['compiled_programs'] = trainer.compiled_programs
  if per_example:  # Before result.json, which marks the run complete.
    per_example.save(os.path.join(run_dir, memorization.FILE))
  results.write_json(os.path.join(run_dir, results.RESULT), result)
  os.remove(ckpt_path)  # The run is complete; result.json is the record.
  log(f'{status}: train accuracy {result["train_accuracy"]:.4f}, test '
      f'accuracy {result["test_accuracy"]:.4f}, {len(history)} epochs -> '
      f'{run_dir}/result.json')
  return result
