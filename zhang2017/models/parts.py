"""Pieces the built-in models share: the kernel penalty, the classifier head,
and the input of the CIFAR architectures beyond the paper (whole images)."""

import keras
from keras import layers

from zhang2017.models import layers as zlayers

# Zero padding of the common CIFAR random crop: pad 4, crop back to H x W.
PAD = 4


def regularizer(weight_decay):
  """wd * sum(w^2) / 2 on a kernel, or None for wd = 0.

  TF1-style wd * l2_loss(w), coupled with momentum like the paper's
  TensorFlow code; see README "Weight decay".
  """
  return keras.regularizers.l2(weight_decay / 2) if weight_decay else None


def classifier(x, num_classes, dropout, weight_decay):
  """Dropout (rate > 0) and the dense logits layer, float32 under mixed
  precision."""
  if dropout:
    x = layers.Dropout(dropout)(x)
  return layers.Dense(num_classes, kernel_regularizer=regularizer(weight_decay),
                      dtype='float32', name='logits')(x)


def batchnorm(synchronized):
  """BatchNorm of the CIFAR ResNet/VGG: PyTorch's defaults (momentum 0.1 in
  its convention, epsilon 1e-5), the framework those forms are defined in."""
  return layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                   synchronized=synchronized)


def whole_image(inputs, random_crop, augment, seed):
  """/255 and per-image standardization of the whole (H, W) image.

  As the paper's models standardize, but without their 28x28 crop: these
  architectures are defined on whole 32x32 images. `random_crop`: the common
  CIFAR crop, zero-padded by `PAD` and cropped back to H x W at a random
  place per image (inference: the image itself); `augment`: that crop and
  horizontal flips.
  """
  x = layers.Rescaling(1.0 / 255, dtype='float32')(inputs)
  if random_crop or augment:
    size = (inputs.shape[1], inputs.shape[2])
    x = layers.ZeroPadding2D(PAD, dtype='float32')(x)
    x = zlayers.Crop(size, random=True, seed=seed, dtype='float32')(x)
  if augment:
    x = layers.RandomFlip('horizontal', seed=seed + 1, dtype='float32')(x)
  return zlayers.PerImageStandardization(dtype='float32')(x)
