"""The paper's models as `keras.Model` builders (Appendix A; PAPER.md section 3).

Every model takes raw images (uint8 or float, 0..255) and does the paper's
preprocessing inside the graph, so it is the same on every backend and runs
inside the compiled step: scale to [0, 1], crop 28x28 (random per image in
training with `random_crop`, centred otherwise), per-image standardization.
Outputs are logits (float32 even under mixed precision).
"""

import keras
from keras import layers

from zhang2017.models import layers as zlayers
from zhang2017.models.parts import classifier as _classifier
from zhang2017.models.parts import regularizer as _reg
from zhang2017.models.specs import PAPER as MODELS
from zhang2017.errors import UserError

PAPER_PARAMS = {
    'inception_small': 1_649_402,
    'inception_small_nobn': 1_649_402,
    'alexnet_small': 1_387_786,
    'mlp_1x512': 1_209_866,
    'mlp_3x512': 1_735_178,
}


def count_params(model):
  """Number of trainable parameters."""
  return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


def _preprocess(inputs, crop, random_crop, augment, seed):
  x = layers.Rescaling(1.0 / 255, dtype='float32')(inputs)
  if crop and (crop < inputs.shape[1] or crop < inputs.shape[2]):
    x = zlayers.Crop(crop, random=random_crop or augment, seed=seed,
                     dtype='float32')(x)
  if augment:  # Appendix: crops, flips and rotations up to 25 degrees.
    x = layers.RandomFlip('horizontal', seed=seed + 1, dtype='float32')(x)
    x = layers.RandomRotation(25 / 360, seed=seed + 2, dtype='float32')(x)
  return zlayers.PerImageStandardization(dtype='float32')(x)


def _inception_small(x, batchnorm, wd, synchronized):
  def conv(x, c, k, strides=1):
    x = layers.Conv2D(c, k, strides=strides, padding='same',
                      use_bias=not batchnorm, kernel_regularizer=_reg(wd))(x)
    if batchnorm:
      # Keras defaults (momentum 0.99, epsilon 1e-3; README "BatchNorm").
      x = layers.BatchNormalization(scale=False,
                                    synchronized=synchronized)(x)
    return layers.ReLU()(x)

  def inception(x, c1, c3):
    return layers.Concatenate()([conv(x, c1, 1), conv(x, c3, 3)])

  def downsample(x, c3):
    pool = layers.MaxPooling2D(3, strides=2, padding='same')(x)
    return layers.Concatenate()([conv(x, c3, 3, strides=2), pool])

  x = conv(x, 96, 3)
  x = inception(x, 32, 32)
  x = inception(x, 32, 48)
  x = downsample(x, 80)
  for c1, c3 in ((112, 48), (96, 64), (80, 80), (48, 96)):
    x = inception(x, c1, c3)
  x = downsample(x, 96)
  x = inception(x, 176, 160)
  x = inception(x, 176, 160)
  return layers.GlobalAveragePooling2D()(x)


def _alexnet_small(x, wd, lrn):
  for _ in range(2):
    x = layers.Conv2D(64, 5, padding='same', activation='relu',
                      kernel_regularizer=_reg(wd))(x)
    x = layers.MaxPooling2D(3, strides=2, padding='same')(x)
    x = zlayers.LocalResponseNormalization(**lrn)(x)
  x = layers.Flatten()(x)
  for units in (384, 192):
    x = layers.Dense(units, activation='relu', kernel_regularizer=_reg(wd))(x)
  return x


def _mlp(x, depth, wd):
  x = layers.Flatten()(x)
  for _ in range(depth):
    x = layers.Dense(512, activation='relu', kernel_regularizer=_reg(wd))(x)
  return x


def build(name, num_classes=10, input_shape=(32, 32, 3), crop=28,
          random_crop=False, augment=False, weight_decay=0.0, dropout=0.0,
          seed=0, lrn=None, synchronized_bn=False):
  """Builds one of the paper's models.

  Args:
    name: one of `MODELS`.
    num_classes: size of the softmax.
    input_shape: raw image shape (H, W, C); pixels in 0..255.
    crop: crop size (28 for CIFAR-10; the parameter counts force it).
    random_crop: random crop per training image instead of the centre crop.
    augment: random crop, horizontal flip and rotation up to 25 degrees.
    weight_decay: coefficient wd of a wd * sum(w^2) / 2 penalty on kernels.
    dropout: dropout rate before the classifier (0 disables).
    seed: seed for the random crop.
    lrn: keyword arguments for `LocalResponseNormalization` (AlexNet).
    synchronized_bn: BatchNorm statistics over the global batch of all
      replicas of a tf.distribute strategy (the paper's single-GPU model),
      not over each replica's share.

  Returns:
    An uncompiled `keras.Model` from raw images to logits.

  Raises:
    UserError: for an unknown name.
  """
  if name not in MODELS:
    raise UserError(f'unknown model {name!r}; use one of {", ".join(MODELS)}')
  inputs = keras.Input(input_shape, name='image')
  if name == 'inception_v3':
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, dtype='float32')(inputs)
    if augment:
      x = layers.RandomFlip('horizontal', seed=seed + 1, dtype='float32')(x)
    base = keras.applications.InceptionV3(
        include_top=False, weights=None, input_shape=input_shape,
        pooling='avg')
    for layer in base.layers:
      if weight_decay and hasattr(layer, 'kernel'):
        layer.kernel.regularizer = _reg(weight_decay)  # Read per variable.
      if synchronized_bn and isinstance(layer, keras.layers.BatchNormalization):
        layer.synchronized = True  # Read at call time (TensorFlow backend).
    x = base(x)
  else:
    x = _preprocess(inputs, crop, random_crop, augment, seed)
    if name.startswith('inception_small'):
      x = _inception_small(x, name == 'inception_small', weight_decay,
                           synchronized_bn)
    elif name == 'alexnet_small':
      x = _alexnet_small(x, weight_decay, lrn or {})
    else:
      x = _mlp(x, int(name[4]), weight_decay)
  outputs = _classifier(x, num_classes, dropout, weight_decay)
  return keras.Model(inputs, outputs, name=name)
