"""Backend set-up: determinism, mixed precision and tf.distribute strategies.

On TensorFlow: `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster,
`MirroredStrategy` when several GPUs are visible, else no strategy. On JAX a
run uses one device (see BUILD.md for several runs per GPU).
"""

import json
import os

import keras


def setup(seed, mixed_precision):
  """Seeds every generator and sets the dtype policy; returns the precision."""
  if keras.backend.backend() == 'tensorflow':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    # Same seed and data => same weights; slower on some GPU kernels.
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(seed)
  policy = 'mixed_bfloat16' if mixed_precision else 'float32'
  keras.mixed_precision.set_global_policy(policy)
  return policy


def get_strategy():
  """The tf.distribute strategy for this process, or None."""
  if keras.backend.backend() != 'tensorflow':
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if os.environ.get('TF_CONFIG'):
    return tf.distribute.MultiWorkerMirroredStrategy()
  if len(tf.config.list_logical_devices('GPU')) > 1:
    return tf.distribute.MirroredStrategy()
  return None


def replicas(strategy):
  """Replicas a training step spans (1 without a strategy)."""
  return strategy.num_replicas_in_sync if strategy is not None else 1


def worker_index():
  """This process's index among TF_CONFIG workers (0: the chief), else 0."""
  cfg = json.loads(os.environ.get('TF_CONFIG') or '{}')
  task = cfg.get('task', {})
  if task.get('type') in ('chief', None):
    return 0
  has_chief = 'chief' in cfg.get('cluster', {})
  return int(task.get('index', 0)) + (1 if has_chief else 0)
