"""FLOPs of a Keras model's forward pass, for the speed benchmarks."""

import keras
import numpy as np


def forward_flops(model):
  """FLOPs of one image's forward pass (convolutions and dense layers)."""
  total = 0
  for layer in _leaves(model):
    if isinstance(layer, keras.layers.Conv2D):
      out = layer.output.shape
      kh, kw, cin, cout = layer.kernel.shape
      total += 2 * out[1] * out[2] * kh * kw * cin * cout
    elif isinstance(layer, keras.layers.Dense):
      total += 2 * int(np.prod(layer.kernel.shape))
  return total


def _leaves(model):
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _leaves(layer)
    else:
      yield layer
