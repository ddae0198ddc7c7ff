"""Run by distribute_test in its own process: MirroredStrategy over two
logical CPUs must give the batch statistics of one device on the same global
batch. Prints the max difference of training-mode outputs as JSON."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ['KERAS_BACKEND'] = 'tensorflow'

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from zhang2017.training import config as config_lib
from zhang2017.training import train_lib

strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
cfg = config_lib.Config(model='inception_small')
x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype(np.uint8)
with strategy.scope():
  model = train_lib.build_model(cfg, 10, x.shape[1:], strategy)
one = train_lib.build_model(cfg, 10, x.shape[1:])
one.set_weights(model.get_weights())
halves = strategy.experimental_distribute_values_from_function(
    lambda ctx: x[8 * ctx.replica_id_in_sync_group:][:8])
out = strategy.run(lambda xb: model(xb, training=True), args=(halves,))
got = np.concatenate([np.asarray(t) for t in
                      strategy.experimental_local_results(out)])
want = np.asarray(one(x, training=True))
print(json.dumps({'replicas': strategy.num_replicas_in_sync,
                  'max_diff': float(np.abs(got - want).max()),
                  'scale': float(np.abs(want).max())}))
