"""What a run tells its user while it trains: the CPU cost note, the clock,
and TensorBoard scalars (history.csv holds the same numbers)."""

import keras

from zhang2017.training import results

# (training, evaluation) images per second on this project's 2-core CPU,
# batch 128, evaluation batch 1000, by backend and mixed precision: measured
# by benchmarks/cpu_speed.py (results/benchmarks/cpu_speed-2026-12-02-*.txt:
# TensorFlow at c9d8186, JAX at 5a30bab); enough to tell a user what a
# convolutional run costs without a GPU.
CPU_IMAGES_PER_SECOND = {
    ('tensorflow', False): {'inception_small': (212, 798),
                            'alexnet_small': (1468, 4206)},
    ('tensorflow', True): {'inception_small': (296, 966),
                           'alexnet_small': (2524, 7286)},
    ('jax', False): {'inception_small': (87, 240),
                     'alexnet_small': (454, 1924)},
}
_SAME_COST = {'inception_small_nobn': 'inception_small'}  # Not measured.


class TensorBoard:
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


def clock(seconds):
  """m:ss, or h:mm:ss from an hour."""
  m, s = divmod(int(round(seconds)), 60)
  return f'{m // 60}:{m % 60:02d}:{s:02d}' if m >= 60 else f'{m}:{s:02d}'


def cpu_warning(cfg, n_trained, n_eval, log):
  """One line before a long CPU run: how long it takes here, and the fix."""
  rates = CPU_IMAGES_PER_SECOND.get(
      (keras.backend.backend(), bool(cfg.mixed_precision)), {})
  rate = rates.get(_SAME_COST.get(cfg.model, cfg.model))
  if rate is None or not results.device_description().startswith('cpu'):
    return
  train, evaluate = rate
  epoch = n_trained / train + n_eval / evaluate
  log(f'note: no GPU; {cfg.model} trains at roughly {train} images/s and '
      f'evaluates at {evaluate} on a 2-core CPU: about {clock(epoch)} per '
      f'epoch with its evaluation, up to {clock(epoch * cfg.epochs)} for '
      f'{cfg.epochs} epochs. BUILD.md "GPUs" says how to run it on a GPU.')
