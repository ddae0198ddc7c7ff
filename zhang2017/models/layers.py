"""Backend-neutral layers the paper needs and Keras lacks (keras.ops only)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable('zhang2017')
class PerImageStandardization(keras.layers.Layer):
  """(x - mean) / max(std, 1/sqrt(N)) per image: tf.image.per_image_standardization."""

  def call(self, x):
    x = ops.cast(x, 'float32')
    n = ops.cast(ops.prod(ops.shape(x)[1:]), 'float32')
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    std = ops.std(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) / ops.maximum(std, ops.rsqrt(n))


@keras.saving.register_keras_serializable('zhang2017')
class Crop(keras.layers.Layer):
  """Crops `size` x `size` (or a (height, width) `size`): centred, or at a
  random place per image in training.

  Unlike `keras.layers.RandomCrop` (one offset per batch, and a resize at
  inference), every training image gets its own offset and inference is the
  plain centre crop, as in the paper's TensorFlow input pipeline.
  """

  def __init__(self, size, random=False, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.size, self.random = size, random
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed) if random else None

  def call(self, x, training=False):
    h, w = x.shape[1], x.shape[2]
    sh, sw = self._hw()
    if not (self.random and training):
      top, left = (h - sh) // 2, (w - sw) // 2
      return x[:, top:top + sh, left:left + sw, :]
    batch = ops.shape(x)[0]
    top = keras.random.randint((batch, 1), 0, h - sh + 1,
                               seed=self.seed_generator)
    left = keras.random.randint((batch, 1), 0, w - sw + 1,
                                seed=self.seed_generator)
    rows = (top + ops.arange(sh, dtype='int32')[None, :])[:, :, None, None]
    cols = (left + ops.arange(sw, dtype='int32')[None, :])[:, None, :, None]
    x = ops.take_along_axis(x, rows, axis=1)
    return ops.take_along_axis(x, cols, axis=2)

  def _hw(self):
    return ((self.size, self.size) if isinstance(self.size, int)
            else tuple(self.size))

  def compute_output_shape(self, shape):
    return (shape[0], *self._hw(), shape[3])

  def get_config(self):
    return {**super().get_config(), 'size': self.size, 'random': self.random,
            'seed': self.seed}


@keras.saving.register_keras_serializable('zhang2017')
class LocalResponseNormalization(keras.layers.Layer):
  """tf.nn.local_response_normalization over channels, for any backend.

  sqr_sum[..., d] = sum(x[..., d - r : d + r + 1] ** 2) is a product with a
  banded 0/1 matrix; out = x / (bias + alpha * sqr_sum) ** beta. Defaults are
  the TensorFlow CIFAR-10 tutorial's (the paper does not state them).
  """

  def __init__(self, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
               **kwargs):
    super().__init__(**kwargs)
    self.depth_radius, self.bias = depth_radius, bias
    self.alpha, self.beta = alpha, beta

  def build(self, shape):
    c = shape[-1]
    idx = ops.arange(c)
    band = ops.abs(idx[:, None] - idx[None, :]) <= self.depth_radius
    self._band = ops.cast(band, self.compute_dtype)

  def call(self, x):
    sqr_sum = ops.matmul(ops.square(x), ops.cast(self._band, x.dtype))
    return x / ops.power(self.bias + self.alpha * sqr_sum, self.beta)

  def get_config(self):
    return {**super().get_config(), 'depth_radius': self.depth_radius,
            'bias': self.bias, 'alpha': self.alpha, 'beta': self.beta}
