"""A plug-in model for `python -m zhang2017.train --model=mymodels:tiny_cnn`.

Any function `build(input_shape, num_classes, **kwargs) -> keras.Model` on
the Python path will do: it gets raw images of the data's shape (pixels
0..255) and returns logits, one per class (no softmax).
"""

import keras
from keras import layers


def tiny_cnn(input_shape, num_classes, width=16):
  """Two 3x3 conv layers and a linear classifier; --model_kwargs sets width."""
  inputs = keras.Input(input_shape)
  x = layers.Rescaling(1 / 255)(inputs)
  for filters in (width, 2 * width):
    x = layers.Conv2D(filters, 3, strides=2, activation='relu')(x)
  x = layers.Flatten()(x)
  return keras.Model(inputs, layers.Dense(num_classes)(x), name='tiny_cnn')
