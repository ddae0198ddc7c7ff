"""ResNet-18 in its common CIFAR form (He et al. 2016, as in the label-noise
follow-ups of the paper): 11,173,962 trainable parameters for 10 classes.

A 3x3 stem convolution of 64 channels with BatchNorm and ReLU and no
max-pool, then [2, 2, 2, 2] basic blocks of 64, 128, 256 and 512 channels
(the first block of each later stage strides 2; a 1x1 convolution with
BatchNorm projects the shortcut where the shape changes), global average
pooling and one dense layer to the logits. Convolutions have no bias (a
BatchNorm follows each). The input is the whole image, scaled and
standardized per image inside the model (`parts.whole_image`); the count
does not depend on the image size.
"""

import keras
from keras import layers

from zhang2017.models import parts

STAGES = (64, 128, 256, 512)
BLOCKS = (2, 2, 2, 2)


def _conv_bn(x, filters, kernel, strides, wd, sync, relu=True):
  x = layers.Conv2D(filters, kernel, strides=strides, padding='same',
                    use_bias=False,
                    kernel_regularizer=parts.regularizer(wd))(x)
  x = parts.batchnorm(sync)(x)
  return layers.ReLU()(x) if relu else x


def _basic_block(x, filters, strides, wd, sync):
  shortcut = x
  if strides != 1 or x.shape[-1] != filters:
    shortcut = _conv_bn(x, filters, 1, strides, wd, sync, relu=False)
  y = _conv_bn(x, filters, 3, strides, wd, sync)
  y = _conv_bn(y, filters, 3, 1, wd, sync, relu=False)
  return layers.ReLU()(layers.Add()([y, shortcut]))


def build(input_shape, num_classes, random_crop=False, augment=False,
          weight_decay=0.0, dropout=0.0, seed=0, synchronized_bn=False):
  """Builds ResNet-18 (CIFAR form) from raw images to logits.

  Args:
    input_shape: raw image shape (H, W, C); pixels in 0..255.
    num_classes: size of the softmax.
    random_crop: training crops of the image zero-padded by 4 pixels.
    augment: those crops and horizontal flips.
    weight_decay: wd of a wd * sum(w^2) / 2 penalty on every kernel.
    dropout: dropout rate before the classifier (0 disables).
    seed: seed of the random crop and flip.
    synchronized_bn: BatchNorm over the global batch of all replicas.

  Returns:
    An uncompiled `keras.Model`.
  """
  inputs = keras.Input(input_shape, name='image')
  x = parts.whole_image(inputs, random_crop, augment, seed)
  x = _conv_bn(x, STAGES[0], 3, 1, weight_decay, synchronized_bn)
  for stage, (filters, blocks) in enumerate(zip(STAGES, BLOCKS)):
    for block in range(blocks):
      strides = 2 if stage > 0 and block == 0 else 1
      x = _basic_block(x, filters, strides, weight_decay, synchronized_bn)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = parts.classifier(x, num_classes, dropout, weight_decay)
  return keras.Model(inputs, outputs, name='resnet18')
