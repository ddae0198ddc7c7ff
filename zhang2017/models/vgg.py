"""VGG-11 with BatchNorm in its common CIFAR form (Simonyan & Zisserman 2015,
configuration A): 9,231,114 trainable parameters for 10 classes.

Eight biased 3x3 convolutions of 64, 128, 256, 256, 512, 512, 512 and 512
channels, each with BatchNorm and ReLU, 2x2 max-pools after the 1st, 2nd,
4th, 6th and 8th, then one dense layer from the 512 channels to the
logits. On 32x32 images the last pool leaves 1x1x512; global average
pooling makes that the same 512 features at any image size (and the pools
pad odd sizes, so 28x28 MNIST works too). The input is the whole image,
scaled and standardized per image inside the model (`parts.whole_image`).
"""

import keras
from keras import layers

from zhang2017.models import parts

# Channels per convolution; 'M': a 2x2 max-pool.
LAYERS = (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M')


def build(input_shape, num_classes, random_crop=False, augment=False,
          weight_decay=0.0, dropout=0.0, seed=0, synchronized_bn=False):
  """Builds VGG-11-BN (CIFAR form) from raw images to logits.

  The arguments and the input pipeline are `resnet.build`'s.

  Returns:
    An uncompiled `keras.Model`.
  """
  inputs = keras.Input(input_shape, name='image')
  x = parts.whole_image(inputs, random_crop, augment, seed)
  for v in LAYERS:
    if v == 'M':
      x = layers.MaxPooling2D(2, padding='same')(x)
      continue
    x = layers.Conv2D(v, 3, padding='same',
                      kernel_regularizer=parts.regularizer(weight_decay))(x)
    x = parts.batchnorm(synchronized_bn)(x)
    x = layers.ReLU()(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = parts.classifier(x, num_classes, dropout, weight_decay)
  return keras.Model(inputs, outputs, name='vgg11_bn')
