"""Exact parameter counts and the backend-neutral layers against TensorFlow."""

import numpy as np
import tensorflow as tf

from zhang2017.models import layers as zlayers
from zhang2017.models import paper_models as models
from zhang2017.errors import UserError


class ModelsTest(tf.test.TestCase):

  def test_parameter_counts_equal_the_paper(self):
    expected = {'inception_small': 1_649_402, 'inception_small_nobn': 1_649_402,
                'alexnet_small': 1_387_786, 'mlp_1x512': 1_209_866,
                'mlp_3x512': 1_735_178}
    for name, count in expected.items():
      with self.subTest(name):
        self.assertEqual(models.count_params(models.build(name)), count)

  def test_regularizers_do_not_change_the_count(self):
    m = models.build('alexnet_small', weight_decay=5e-4, dropout=0.5,
                     random_crop=True)
    self.assertEqual(models.count_params(m), 1_387_786)
    self.assertLen(m.losses, 5)  # One penalty per kernel.

  def test_weight_decay_is_wd_times_half_the_squared_kernels(self):
    wd = 5e-4
    for name in ('inception_small', 'alexnet_small', 'mlp_3x512'):
      with self.subTest(name):
        m = models.build(name, weight_decay=wd)
        kernels = [v for v in m.trainable_variables
                   if v.path.endswith('/kernel')]
        self.assertLen(m.losses, len(kernels))  # Kernels only: no biases.
        expected = wd / 2 * sum(float(np.sum(np.square(v.numpy())))
                                for v in kernels)
        self.assertAllClose(float(sum(m.losses)), expected, rtol=1e-5)
        # Its gradient is wd * w: the TF1 `wd * l2_loss(w)` of the paper.
        with tf.GradientTape() as tape:
          penalty = tf.add_n(m.losses)
        grads = tape.gradient(penalty, kernels)
        self.assertAllClose(grads[-1], wd * kernels[-1].numpy(), rtol=1e-5)
        self.assertEmpty(models.build(name).losses)

  def test_batchnorm_only_in_inception_small(self):
    kinds = lambda m: {type(l).__name__ for l in m.layers}
    self.assertIn('BatchNormalization', kinds(models.build('inception_small')))
    self.assertNotIn('BatchNormalization',
                     kinds(models.build('inception_small_nobn')))

  def test_inception_v3_imagenet_shape(self):
    m = models.build('inception_v3', num_classes=1000,
                     input_shape=(299, 299, 3), dropout=0.2)
    self.assertEqual(m.output_shape, (None, 1000))
    self.assertEqual(models.count_params(m), 23_817_352)  # Keras' V3 + head.

  def test_unknown_model(self):
    with self.assertRaisesRegex(UserError, 'unknown model'):
      models.build('nope')

  def test_outputs_are_logits_for_uint8_images(self):
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), np.uint8)
    y = models.build('mlp_1x512')(x)
    self.assertEqual(y.shape, (3, 10))


class LayersTest(tf.test.TestCase):

  def test_per_image_standardization_matches_tf(self):
    x = np.random.default_rng(1).uniform(0, 1, (4, 28, 28, 3)).astype('f4')
    x[0] = 0.5  # Constant image: std 0, the 1/sqrt(N) floor applies.
    ours = zlayers.PerImageStandardization()(x)
    self.assertAllClose(ours, tf.image.per_image_standardization(x),
                        atol=1e-5)

  def test_lrn_matches_tf(self):
    x = np.random.default_rng(2).normal(size=(2, 7, 7, 64)).astype('f4') * 3
    ours = zlayers.LocalResponseNormalization()(x)
    ref = tf.nn.local_response_normalization(
        x, depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)
    self.assertAllClose(ours, ref, atol=1e-5)

  def test_crop_centre_at_inference_random_in_training(self):
    x = np.arange(6 * 32 * 32).reshape(6, 32, 32, 1).astype('f4')
    crop = zlayers.Crop(28, random=True, seed=0)
    self.assertAllEqual(crop(x), x[:, 2:30, 2:30])
    out = np.asarray(crop(x, training=True))
    tops = set()
    for i in range(6):
      # Every output is a contiguous 28x28 window of its own image.
      r, c = divmod(int(out[i, 0, 0, 0]) - i * 1024, 32)
      self.assertAllEqual(out[i], x[i, r:r + 28, c:c + 28])
      tops.add((r, c))
    self.assertGreater(len(tops), 1)  # Offsets differ per image.


if __name__ == '__main__':
  tf.test.main()
