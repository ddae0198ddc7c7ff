"""Run by distribute_test in its own process: MirroredStrategy over two
logical CPUs must give the batch statistics of one device on the same global
batch. Prints the max difference of training-mode outputs as JSON."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ['KERAS_BACKEND'] = 'tensorflow'

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from zhang2017.training import config as config_lib
from zhang2017.training import train_lib

strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype(np.uint8)


class Block(keras.layers.Layer):
  """A user's own layer holding a BatchNorm (it has no `.layers`)."""

  def __init__(self):
    super().__init__()
    self.conv = keras.layers.Conv2D(8, 3)
    self.bn = keras.layers.BatchNormalization()

  def call(self, h, training=None):
    return self.bn(self.conv(h), training=training)


def plugin(input_shape, num_classes):
  """A user's model, its BatchNorms nested in a Sequential and in a Layer."""
  inp = keras.Input(input_shape)
  h = keras.layers.Conv2D(8, 3)(keras.layers.Rescaling(1 / 255)(inp))
  h = keras.Sequential([keras.layers.BatchNormalization()])(h)
  h = Block()(h)
  return keras.Model(inp, keras.layers.Dense(num_classes)(
      keras.layers.GlobalAveragePooling2D()(h)))


def max_diff(model_fn=None):
  """Training-mode outputs on two replicas against one device."""
  cfg = config_lib.Config(model='inception_small')
  with strategy.scope():
    model = train_lib.build_model(cfg, 10, x.shape[1:], strategy, model_fn)
  one = train_lib.build_model(cfg, 10, x.shape[1:], model_fn=model_fn)
  one.set_weights(model.get_weights())
  halves = strategy.experimental_distribute_values_from_function(
      lambda ctx: x[8 * ctx.replica_id_in_sync_group:][:8])
  out = strategy.run(lambda xb: model(xb, training=True), args=(halves,))
  got = np.concatenate([np.asarray(t) for t in
                        strategy.experimental_local_results(out)])
  want = np.asarray(one(x, training=True))
  return float(np.abs(got - want).max()), float(np.abs(want).max())


diff, scale = max_diff()
plugin_diff, plugin_scale = max_diff(plugin)
print(json.dumps({'replicas': strategy.num_replicas_in_sync,
                  'max_diff': diff, 'scale': scale,
                  'plugin_max_diff': plugin_diff,
                  'plugin_scale': plugin_scale}))
