"""train_and_evaluate: one run of the paper's training protocol.

Each epoch: SGD over the (corrupted) training set in a seeded order, then
inference-mode evaluation of the whole training set and the clean test set.
The run stops when training accuracy reaches 100% (status `fitted`), when the
loss stops being finite (`diverged`) or at the epoch limit (`not_fitted`).

After every epoch the state (weights, optimizer, random-generator states,
history) goes to `checkpoint.npz` in the run directory, so a run killed at any
point and started again with the same flags resumes from its last completed
epoch and ends with the same numbers.
"""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time

import keras
import numpy as np

from zhang2017 import config as config_lib
from zhang2017 import corruption
from zhang2017 import data as data_lib
from zhang2017 import distribute
from zhang2017 import models
from zhang2017 import results
from zhang2017 import trainers
from zhang2017.errors import UserError

CHECKPOINT = 'checkpoint.npz'


# Training images per second on a 2-core CPU, batch 128 (TensorFlow:
# ../shared/FACTS.md; JAX: benchmarks/speed.py here, one step per call):
# enough to tell a user what a convolutional run costs without a GPU.
CPU_IMAGES_PER_SECOND = {'tensorflow': {'inception_small': 285,
                                        'inception_small_nobn': 285,
                                        'alexnet_small': 320},
                         'jax': {'inception_small': 34,
                                 'inception_small_nobn': 34,
                                 'alexnet_small': 34}}


def prepare_data(cfg):
  """Loads, subsets and corrupts the dataset: (dataset, record, changed)."""
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


def build_model(cfg, num_classes, input_shape, strategy=None):
  """The run's model. Under a strategy of several replicas BatchNorm is
  synchronized: statistics over the global batch, as on the paper's single
  GPU (plain BatchNorm would normalize each replica's 128/R examples)."""
  return models.build(cfg.model, num_classes, input_shape,
                      random_crop=cfg.random_crop, augment=cfg.augment,
                      weight_decay=cfg.weight_decay, dropout=cfg.dropout,
                      seed=cfg.seed,
                      synchronized_bn=distribute.replicas(strategy) > 1)


def weights_fingerprint(model):
  """sha256 (16 hex digits) of every model variable's final bytes."""
  h = hashlib.sha256()
  for v in model.variables:
    h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v.value)).tobytes())
  return h.hexdigest()[:16]


def _check_output_dir(run_dir):
  try:
    os.makedirs(run_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create --output_dir={run_dir} ({e.strerror}); '
                    'choose a writable folder') from e
  if not os.access(run_dir, os.W_OK | os.X_OK):
    raise UserError(f'--output_dir={run_dir} is not writable; choose a '
                    'writable folder')


def save_checkpoint(path, model, optimizer, meta):
  arrays = {f'v{i}': keras.ops.convert_to_numpy(v.value)
            for i, v in enumerate(model.variables)}
  arrays.update({f'o{i}': keras.ops.convert_to_numpy(v.value)
                 for i, v in enumerate(optimizer.variables)})
  tmp = path + '.tmp.npz'
  np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
  os.replace(tmp, path)


def load_checkpoint(path, model, optimizer, run_key):
  """Restores state; returns the saved meta, or None if there is none."""
  if not os.path.exists(path):
    return None
  try:
    z = np.load(path)
    meta = json.loads(str(z['meta']))
  except (OSError, ValueError, KeyError, EOFError) as e:
    raise UserError(f'{path} is damaged ({e}); delete it to restart the run '
                    'from scratch') from e
  if meta['run_key'] != run_key:
    raise UserError(f'{os.path.dirname(path)} holds a run with other flags; '
                    'use another --output_dir or delete that folder')
  if not optimizer.built:
    optimizer.build(model.trainable_variables)
  for i, v in enumerate(model.variables):
    v.assign(z[f'v{i}'])
  for i, v in enumerate(optimizer.variables):
    v.assign(z[f'o{i}'])
  return meta


class _TensorBoard:
  """Per-epoch scalars via tf.summary when TensorFlow is installed."""

  def __init__(self, logdir):
    try:
      import tensorboard  # pylint: disable=g-import-not-at-top,unused-import
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._tf = tf
      self._writer = tf.summary.create_file_writer(logdir)
    except ImportError:  # JAX-only machines: history.csv still has it all.
      self._writer = None

  def write(self, row):
    if self._writer is None:
      return
    with self._writer.as_default(step=row['step']):
      for k, v in row.items():
        if k not in ('epoch', 'step') and v is not None and v != '':
          self._tf.summary.scalar(k, float(v))
    self._writer.flush()


def _evaluate(trainer, split, labels):
  logits = trainer.predict(split)
  correct = logits.argmax(axis=1) == labels
  loss = float(trainers.softmax_cross_entropy(logits, labels).mean())
  return loss, correct


def _fraction(mask):
  return float(mask.mean()) if mask.size else None


def _clock(seconds):
  m, s = divmod(int(round(seconds)), 60)
  return f'{m // 60}:{m % 60:02d}:{s:02d}' if m >= 60 else f'{m}:{s:02d}'


def _cpu_warning(cfg, n, n_trained, n_test, log):
  """One line before a long CPU run: how long it takes here, and the fix."""
  rate = CPU_IMAGES_PER_SECOND.get(keras.backend.backend(), {}).get(cfg.model)
  if rate is None or not results.device_description().startswith('cpu'):
    return
  # Inference (both splits, every epoch) runs roughly 3x faster than SGD.
  epoch = n_trained / rate + (n + n_test) / (3 * rate)
  log(f'note: no GPU; {cfg.model} trains at roughly {rate} images/s on a '
      f'2-core CPU: about {_clock(epoch)} per epoch with its evaluation, up '
      f'to {_clock(epoch * cfg.epochs)} for {cfg.epochs} epochs. BUILD.md '
      '"GPUs" says how to run it on a GPU.')


def train_and_evaluate(cfg, log=print):
  """Runs (or resumes, or returns) the run that `cfg` describes.

  Args:
    cfg: a `config.Config`; `cfg.output_dir` is the run directory.
    log: where progress lines go.

  Returns:
    The result dict, as written to `<output_dir>/result.json`.

  Raises:
    UserError: bad configuration, data or output directory; nothing is
      written in that case.
  """
  config_lib.validate(cfg)
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
  if cfg.dataset == 'imagenet':
    from zhang2017 import imagenet  # pylint: disable=g-import-not-at-top
    return imagenet.train_and_evaluate(cfg, log)

  ds, record, changed = prepare_data(cfg)
  _check_output_dir(run_dir)
  precision = distribute.setup(cfg.seed, cfg.mixed_precision)
  strategy = distribute.get_strategy()
  n = len(ds.y_train)
  steps_per_epoch = n // cfg.batch_size  # Full batches only (trainers.py).
  with strategy.scope() if strategy else contextlib.nullcontext():
    model = build_model(cfg, ds.num_classes, ds.x_train.shape[1:], strategy)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.lr, decay_steps=steps_per_epoch, decay_rate=cfg.lr_decay,
        staircase=True)  # lr * decay ** epoch
    optimizer = keras.optimizers.SGD(schedule, momentum=cfg.momentum)
  trainer = trainers.make(model, optimizer, (ds.x_train, ds.y_train),
                          ds.x_test, cfg.batch_size, cfg.eval_batch_size,
                          strategy, cfg.steps_per_call)
  params = models.count_params(model)

  ckpt_path = os.path.join(run_dir, CHECKPOINT)
  meta = load_checkpoint(ckpt_path, model, optimizer, cfg.run_key())
  history = meta['history'] if meta else []
  status = meta['status'] if meta else None
  if meta:
    log(f'resuming {run_dir} after epoch {len(history)}')
  log(f'{cfg.model} ({params:,} parameters) on {n} {cfg.dataset} images, '
      f'labels={cfg.labels} p={record["corrupt_prob"]} pixels={cfg.pixels}, '
      f'{precision}, {keras.backend.backend()} backend')
  if not history:
    _cpu_warning(cfg, n, steps_per_epoch * cfg.batch_size, len(ds.y_test),
                 log)
  tb = _TensorBoard(os.path.join(run_dir, 'tb'))
  session_start, session_epochs = time.time(), 0
  kept = ~changed
  while status is None:
    epoch = len(history)
    t0 = time.time()
    train_loss, running = trainer.train_epoch(
        epoch, epoch_order(cfg.seed, epoch, n))
    eval_loss, correct = _evaluate(trainer, 'train', ds.y_train)
    test_loss, test_correct = _evaluate(trainer, 'test', ds.y_test)
    row = {
        'epoch': epoch + 1,
        'step': (epoch + 1) * steps_per_epoch,
        'learning_rate': cfg.lr * cfg.lr_decay ** epoch,
        'train_loss': train_loss,
        'train_accuracy_running': running,
        'train_eval_loss': eval_loss,
        'train_accuracy': _fraction(correct),
        'test_loss': test_loss,
        'test_accuracy': _fraction(test_correct),
        'train_accuracy_changed': _fraction(correct[changed]),
        'train_accuracy_kept': _fraction(correct[kept]),
        'seconds': round(time.time() - t0, 3),
    }
    history.append(row)
    tb.write(row)
    session_epochs += 1
    elapsed = time.time() - session_start
    left = elapsed / session_epochs * (cfg.epochs - epoch - 1)
    log(f'epoch {row["epoch"]}/{cfg.epochs}  loss {train_loss:.4f}  '
        f'train acc {row["train_accuracy"]:.4f} (running {running:.4f})  '
        f'test acc {row["test_accuracy"]:.4f}  {row["seconds"]:.1f}s, '
        f'elapsed {_clock(elapsed)}, at most {_clock(left)} to the epoch '
        'limit')
    status = epoch_status((train_loss, eval_loss), correct.all(), epoch,
                          cfg.epochs)
    results.write_csv(os.path.join(run_dir, results.HISTORY), history)
    save_checkpoint(ckpt_path, model, optimizer,
                     {'run_key': cfg.run_key(), 'history': history,
                      'status': status})

  last = history[-1]
  fitted = status == 'fitted'
  result = {
      'status': status,
      'train_accuracy': last['train_accuracy'],
      'test_accuracy': last['test_accuracy'],
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
      'test_size': len(ds.y_test),
      'params': params,
      'weights_fingerprint': weights_fingerprint(model),
      'flags': {**cfg.to_dict(), 'learning_rate': cfg.lr},
      'corruption': record,
      'provenance': results.provenance(ds.source, time.time() - start,
                                       precision),
  }
  result['provenance']['train_seconds'] = round(
      sum(r['seconds'] for r in history), 2)
  # JAX: programs compiled in this process (1 + 1 unless shapes changed).
  result['provenance']['compiled_programs'] = trainer.compiled_programs
  results.write_json(os.path.join(run_dir, results.RESULT), result)
  os.remove(ckpt_path)  # The run is complete; result.json is the record.
  log(f'{status}: train accuracy {result["train_accuracy"]:.4f}, test '
      f'accuracy {result["test_accuracy"]:.4f}, {len(history)} epochs -> '
      f'{run_dir}/result.json')
  return result

