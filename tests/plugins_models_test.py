"""--model beyond the paper: ResNet-18 and VGG-11-BN with their exact
parameter counts, plug-in models (package.module:function, or a callable in
process) trained to a complete result, and every bad plug-in as one line."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

import testutil
from zhang2017 import cli
from zhang2017.errors import UserError
from zhang2017.models import parts
from zhang2017.models import registry
from zhang2017.training import config as config_lib
from zhang2017.training import results
from zhang2017.training import train_lib

# A plug-in module as a user writes one, and the mistakes users make.
PLUGIN = textwrap.dedent('''
    import keras
    from keras import layers

    def tiny(input_shape, num_classes, width=4):
      inputs = keras.Input(input_shape)
      x = layers.Rescaling(1 / 255)(inputs)
      x = layers.Conv2D(width, 3, strides=2, activation='relu')(x)
      x = layers.GlobalAveragePooling2D()(x)
      return keras.Model(inputs, layers.Dense(num_classes)(x))

    def not_a_model(input_shape, num_classes):
      return 'a model'

    def five_logits(input_shape, num_classes):
      return tiny(input_shape, 5)

    def softmax(input_shape, num_classes):
      inputs = keras.Input(input_shape)
      x = layers.Flatten()(inputs)
      return keras.Model(inputs, layers.Dense(num_classes, 'softmax')(x))

    NOT_CALLABLE = 3
''')
COUNTS = {'resnet18': 11_173_962, 'vgg11_bn': 9_231_114}


def _plugin_dir(test):
  d = test.create_tempdir().full_path
  with open(os.path.join(d, 'zhang2017_test_plugin.py'), 'w') as f:
    f.write(PLUGIN)
  return d


def _mnist(test):
  """The tiny IDX MNIST of testutil: 20 training, 10 test images, 28x28x1."""
  return testutil.mnist_dir(test.create_tempdir().full_path)


class RegisteredModelsTest(tf.test.TestCase):

  def test_parameter_counts(self):
    for name, count in COUNTS.items():
      with self.subTest(name):
        m = registry.build(name, (32, 32, 3), 10)
        self.assertEqual(registry.count_params(m), count)
        self.assertEqual(m.output_shape, (None, 10))
        # The flags change no count; weight decay is one penalty per kernel.
        m = registry.build(name, (32, 32, 3), 10, weight_decay=5e-4,
                           dropout=0.5, augment=True)
        self.assertEqual(registry.count_params(m), count)
        kernels = [v for v in m.trainable_variables
                   if v.path.endswith('kernel')]
        self.assertLen(m.losses, len(kernels))
        self.assertEqual(len(kernels), {'resnet18': 21, 'vgg11_bn': 9}[name])

  def test_counts_on_jax(self):
    code = ('from zhang2017.models import registry as r; import numpy as np;'
            'x = np.zeros((2, 32, 32, 3), np.uint8);'
            'print([(r.count_params(m), tuple(m(x, training=True).shape)) '
            'for m in (r.build("resnet18", (32, 32, 3), 10, augment=True), '
            'r.build("vgg11_bn", (32, 32, 3), 10, random_crop=True))])')
    p = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True,
        env={**os.environ, 'PYTHONPATH': testutil.ROOT,
             'KERAS_BACKEND': 'jax'}, timeout=300, check=False)
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    self.assertEqual(testutil.last_line(p.stdout),
                     '[(11173962, (2, 10)), (9231114, (2, 10))]')

  def test_classes_and_image_size_follow_the_data(self):
    for name in COUNTS:
      for shape in ((28, 28, 1), (64, 48, 3)):
        with self.subTest(f'{name} {shape}'):
          m = registry.build(name, shape, 3, random_crop=True)
          x = np.zeros((2,) + shape, np.uint8)
          self.assertEqual(m(x, training=True).shape, (2, 3))

  def test_padded_crop_is_the_image_at_inference(self):
    inputs = keras.Input((8, 6, 3))
    plain = keras.Model(inputs, parts.whole_image(inputs, False, False, 0))
    crop = keras.Model(inputs, parts.whole_image(inputs, True, False, 0))
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 6, 3), np.uint8)
    self.assertAllClose(crop(x), plain(x))
    self.assertNotAllClose(crop(x, training=True), plain(x))

  def test_paper_models_need_images_larger_than_their_crop(self):
    with self.assertRaisesRegex(UserError, 'these are 28x28: drop them'):
      registry.build('alexnet_small', (28, 28, 1), 10, random_crop=True)
    m = registry.build('alexnet_small', (64, 64, 3), 3, random_crop=True)
    self.assertEqual(m.output_shape, (None, 3))
    self.assertEqual(registry.count_params(m), 1_387_786 - 7 * 193)
    for name in ('mlp_1x512', 'alexnet_small', 'inception_small'):
      with self.subTest(name):  # 40x24: one side below the crop.
        with self.assertRaisesRegex(UserError, 'these are 40x24: use larger'):
          registry.build(name, (40, 24, 1), 3)


class ModelFlagsTest(tf.test.TestCase):

  def test_specs(self):
    ok = config_lib.validate(config_lib.Config(
        model='pkg.mod:build', model_kwargs='{"width": 8}'))
    self.assertEqual(ok.kwargs, {'width': 8})
    self.assertEqual(ok.lr, config_lib.PLUGIN_LEARNING_RATE)
    self.assertEqual(config_lib.Config(model='resnet18').lr, 0.01)
    # A checkpoint written before --model_kwargs existed still resumes.
    self.assertNotIn('model_kwargs', config_lib.Config().run_key())
    self.assertNotEqual(ok.run_key(), config_lib.Config(
        model='pkg.mod:build', model_kwargs='{"width": 9}').run_key())
    for kw, expect in (
        (dict(model='nope'), 'should be one of .*resnet18, vgg11_bn or a '
         'plug-in package.module:function'),
        (dict(model='pkg/mod.py:f'), 'is not known'),
        (dict(model='m:f', model_kwargs='{width: 8}'), 'not valid JSON'),
        (dict(model='m:f', model_kwargs='[8]'), 'a JSON list, not an object'),
        (dict(model='resnet18', model_kwargs='{}'), 'resnet18 takes none'),
        (dict(model='m:f', random_crop=True), 'drop --random_crop'),
        (dict(model='m:f', augment=True), 'drop --augment'),
        (dict(model='m:f', dropout=0.5), 'drop --dropout')):
      with self.subTest(str(kw)):
        with self.assertRaisesRegex(UserError, expect):
          config_lib.validate(config_lib.Config(**kw))

  def test_run_folder_names_are_safe_and_distinct(self):
    plain = config_lib.Config(model='mlp_1x512', learning_rate=0.05)
    self.assertEqual(config_lib.default_run_dir(plain),
                     'runs/cifar10-mlp_1x512-true-learning_rate0.05-seed0')
    readme = config_lib.Config(dataset='folder:/tmp/shapes', labels='random',
                               model='mymodels:tiny_cnn')
    self.assertEqual(config_lib.default_run_dir(readme),
                     'runs/folder_tmp_shapes~13776e66-mymodels_tiny_cnn~'
                     'ac7620f5-random-seed0')
    dirs = {config_lib.default_run_dir(config_lib.Config(**kw)) for kw in (
        dict(dataset='folder:/tmp/x', model='pkg.mod:f'),
        dict(dataset='folder:/tmp_x', model='pkg.mod:f'),
        dict(dataset='folder:/tmp/x', model='pkg.mod:f',
             model_kwargs='{"width": 8}'),
        dict(dataset='folder:../x', model='pkg.mod:f'))}
    self.assertLen(dirs, 4)
    for d in dirs:
      self.assertEqual(os.path.dirname(d), 'runs')
      self.assertRegex(os.path.basename(d), r'^folder_tmp_x~|^folder_x~')
      self.assertNotRegex(d[len('runs/'):], r'[:/"{} ]')


class PluginTrainingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.plugins = _plugin_dir(self)
    sys.path.insert(0, self.plugins)
    self.addCleanup(sys.path.remove, self.plugins)

  def run_here(self, *args, model_fn=None):
    out = os.path.join(self.create_tempdir().full_path, 'run')
    cfg = cli.config_from_argv(['train', '--dataset=mnist',
                                f'--data_dir={_mnist(self)}', '--batch_size=4',
                                '--epochs=1', f'--output_dir={out}', *args])
    r = train_lib.train_and_evaluate(cfg, log=lambda line: None,
                                     model_fn=model_fn)
    with open(os.path.join(out, results.RESULT)) as f:
      self.assertEqual(json.load(f), r)
    return r

  def test_a_plugin_module_trains_to_a_complete_result(self):
    r = self.run_here('--model=zhang2017_test_plugin:tiny',
                      '--model_kwargs={"width": 3}', '--labels=random',
                      '--pixels=gaussian', '--weight_decay=1e-4')
    self.assertCountEqual(r, results.RESULT_KEYS)
    self.assertEqual(r['flags']['model'], 'zhang2017_test_plugin:tiny')
    self.assertEqual(r['flags']['model_kwargs'], '{"width": 3}')
    self.assertEqual(r['flags']['learning_rate'], 0.01)
    self.assertEqual(r['params'], 9 * 3 + 3 + 3 * 10 + 10)  # width 3, 1 channel
    self.assertEqual(r['corruption']['labels'], 'random')
    self.assertEqual(r['corruption']['pixels'], 'gaussian')
    self.assertEqual((r['train_size'], r['test_size'], r['epochs']),
                     (20, 10, 1))

  def test_a_callable_in_process(self):
    import zhang2017_test_plugin  # pylint: disable=g-import-not-at-top,import-error
    r = self.run_here(model_fn=zhang2017_test_plugin.tiny)
    self.assertEqual(r['flags']['model'], 'zhang2017_test_plugin:tiny')
    with self.assertRaisesRegex(UserError, 'returned str, not a keras'):
      self.run_here(model_fn=zhang2017_test_plugin.not_a_model)


M = 'zhang2017_test_plugin'
# Each bad plug-in: (flags, what its one line says).
BAD = (
    ([f'--model={M}_missing:tiny'], f'no module {M}_missing on the Python '
     f'path; add the folder holding {M}_missing to PYTHONPATH'),
    ([f'--model={M}:tyni'], 'has no function tyni; use one of its functions '
     '(five_logits, not_a_model, softmax, tiny)'),
    ([f'--model={M}:NOT_CALLABLE'], 'is not a function (type int)'),
    ([f'--model={M}:not_a_model'], 'returned str, not a keras.Model'),
    ([f'--model={M}:five_logits'], 'outputs (None, 5), not (batch, 10) '
     'logits for the 10 classes'),
    ([f'--model={M}:softmax'], 'return the logits'),
    ([f'--model={M}:tiny', '--model_kwargs={"depth": 2}'],
     "unexpected keyword argument 'depth'); fix --model_kwargs"),
    ([f'--model={M}:tiny', '--model_kwargs=width=2'], 'not valid JSON'))


class BadPluginTest(tf.test.TestCase):
  """Each bad plug-in is a UserError of one line naming the fix, raised
  before anything is written; the binary makes that exit 2 and one line
  at each place such an error arises (before the data, after the seeding
  that starts TensorFlow on JAX, in the flags)."""

  def args(self, data, out):
    return ['--dataset=mnist', f'--data_dir={data}', '--batch_size=4',
            '--epochs=1', f'--output_dir={out}']

  def test_each_bad_plugin_in_process(self):
    plugins, data = _plugin_dir(self), _mnist(self)
    sys.path.insert(0, plugins)
    self.addCleanup(sys.path.remove, plugins)
    for flags_, expect in BAD:
      with self.subTest(flags_[-1]):
        out = os.path.join(self.create_tempdir().full_path, 'run')
        with self.assertRaises(UserError) as e:
          train_lib.train_and_evaluate(cli.config_from_argv(
              ['train', *self.args(data, out), *flags_]), log=lambda l: None)
        self.assertIn(expect, str(e.exception))
        self.assertNotIn('\n', str(e.exception))
        self.assertFalse(os.path.exists(out))

  def test_the_binary_exits_2_with_one_line(self):
    plugins, data = _plugin_dir(self), _mnist(self)
    env = {'PYTHONPATH': os.pathsep.join([testutil.ROOT, plugins]),
           'KERAS_BACKEND': 'jax'}  # Starts faster than TensorFlow.
    for flags_, expect in (BAD[0], BAD[4], BAD[-1]):
      with self.subTest(flags_[-1]):
        out = os.path.join(self.create_tempdir().full_path, 'run')
        p = testutil.run_module('zhang2017.train', *self.args(data, out),
                                *flags_, env=env)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(p.returncode, 2, p.stderr[-2000:])
        self.assertLen(lines, 1, p.stderr)
        self.assertStartsWith(lines[0], 'error: ')
        self.assertIn(expect, lines[0])
        self.assertFalse(os.path.exists(out))

  def test_the_binary_trains_a_plugin_on_jax(self):
    plugins = _plugin_dir(self)
    out = os.path.join(self.create_tempdir().full_path, 'run')
    p = testutil.run_module(
        'zhang2017.train', '--dataset=mnist', f'--data_dir={_mnist(self)}',
        '--batch_size=4', '--epochs=2', f'--output_dir={out}',
        '--model=zhang2017_test_plugin:tiny', '--labels=partial',
        '--corrupt_prob=0.5',
        env={'PYTHONPATH': os.pathsep.join([testutil.ROOT, plugins]),
             'KERAS_BACKEND': 'jax'})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    r = results.load(out)
    self.assertCountEqual(r, results.RESULT_KEYS)
    self.assertEqual((r['epochs'], r['provenance']['backend']), (2, 'jax'))
    self.assertEqual(r['corruption']['corrupt_prob'], 0.5)


if __name__ == '__main__':
  tf.test.main()
