"""What a run tells its user while it trains: the CPU cost note, the clock,
and TensorBoard scalars (history.csv holds the same numbers)."""

import keras

from zhang2017.training import results

# Training images per second on a 2-core CPU, batch 128 (TensorFlow:
# ../shared/FACTS.md; JAX: benchmarks/speed.py here, one step per call):
# enough to tell a user what a convolutional run costs without a GPU.
CPU_IMAGES_PER_SECOND = {'tensorflow': {'inception_small': 285,
                                        'inception_small_nobn': 285,
                                        'alexnet_small': 320},
                         'jax': {'inception_small': 34,
                                 'inception_small_nobn': 34,
                                 'alexnet_small': 34}}


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
  rate = CPU_IMAGES_PER_SECOND.get(keras.backend.backend(), {}).get(cfg.model)
  if rate is None or not results.device_description().startswith('cpu'):
    return
  # Inference (both splits, every epoch) runs roughly 3x faster than SGD.
  epoch = n_trained / rate + n_eval / (3 * rate)
  log(f'note: no GPU; {cfg.model} trains at roughly {rate} images/s on a '
      f'2-core CPU: about {clock(epoch)} per epoch with its evaluation, up '
      f'to {clock(epoch * cfg.epochs)} for {cfg.epochs} epochs. BUILD.md '
      '"GPUs" says how to run it on a GPU.')
