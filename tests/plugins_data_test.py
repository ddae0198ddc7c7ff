"""The user's datasets (`--dataset=folder:`, `module:function`, `tfds:`):
loading, the randomization tests on any size and class count, the bad
plug-ins' one-line errors, the online path of the built-ins, and whole runs
through the binary."""

import json
import os
import sys
import textwrap
import time
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow as tf

import testutil
from zhang2017 import cli
from zhang2017.data import corruption
from zhang2017.data import datasets as data
from zhang2017.data import tfds_datasets
from zhang2017.errors import UserError
from zhang2017.training import results
from zhang2017.training import train_lib

CLASSES = ('cat', 'dog', 'emu')


def make_folder(root, size=(32, 32), mode='RGB', classes=CLASSES, n_train=6,
                n_test=2, ext='png', seed=0):
  """An image folder root/{train,test}/<class>/NNN.<ext> of random images;
  returns {split: uint8 array in load order}."""
  rng = np.random.default_rng(seed)
  shape = (size[1], size[0]) + ((3,) if mode == 'RGB' else ())
  arrays = {}
  for split, n in (('train', n_train), ('test', n_test)):
    arrays[split] = []
    for c in classes:
      os.makedirs(os.path.join(root, split, c), exist_ok=True)
      for i in range(n):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(a).save(
            os.path.join(root, split, c, f'{i:03d}.{ext}'))
        arrays[split].append(a if mode == 'RGB' else a[..., None])
    arrays[split] = np.stack(arrays[split])
  return arrays


def write_module(folder, name, body):
  with open(os.path.join(folder, f'{name}.py'), 'w') as f:
    f.write(textwrap.dedent(body))


def store_tfds(root, name, n=(12, 5), classes=3, shape=(16, 16, 3),
               config=None, splits=('train', 'test'), version='1.0.0',
               keys=None):
  """A tiny prepared tfds dataset under root; `keys`: other feature names,
  declared as its supervised keys."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(2)
  image, label = keys or ('image', 'label')
  split = lambda k: {image: rng.integers(0, 256, (k,) + shape, np.uint8),
                     label: rng.integers(0, classes, k)}
  builder = tfds.dataset_builders.store_as_tfds_dataset(
      name=name, version=version, data_dir=root, config=config,
      split_datasets={s: tf.data.Dataset.from_tensor_slices(split(k))
                      for s, k in zip(splits, n)},
      features=tfds.features.FeaturesDict({
          image: tfds.features.Image(shape=shape),
          label: tfds.features.ClassLabel(num_classes=classes)}))
  if keys:  # store_as_tfds_dataset takes no supervised keys: add them.
    path = os.path.join(builder.data_dir, 'dataset_info.json')
    with open(path) as f:
      info = json.load(f)
    info['supervisedKeys'] = {'tuple': {'items': [
        {'featureKey': image}, {'featureKey': label}]}}
    with open(path, 'w') as f:
      json.dump(info, f)


class LoadTest(tf.test.TestCase):

  def test_folders_of_any_size_and_channels(self):
    for size, mode, channels in (((32, 32), 'RGB', 3), ((64, 64), 'RGB', 3),
                                 ((40, 24), 'L', 1)):
      with self.subTest(f'{size} {mode}'):
        root = self.create_tempdir().full_path
        arrays = make_folder(root, size, mode)
        # Suffixes in any case; other files and hidden folders ignored.
        os.rename(f'{root}/train/emu/005.png', f'{root}/train/emu/005.PNG')
        open(f'{root}/train/dog/notes.txt', 'w').close()
        os.makedirs(f'{root}/test/.thumbnails')
        ds = data.load(f'folder:{root}')
        self.assertEqual(ds.x_train.shape, (18, size[1], size[0], channels))
        self.assertEqual(ds.x_test.shape, (6, size[1], size[0], channels))
        self.assertEqual(ds.num_classes, 3)
        self.assertAllEqual(ds.y_train, np.repeat([0, 1, 2], 6))
        self.assertAllEqual(ds.y_test, np.repeat([0, 1, 2], 2))
        self.assertAllEqual(ds.x_train, arrays['train'])  # PNG: lossless.
        self.assertAllEqual(ds.x_test, arrays['test'])
        self.assertRegex(ds.source,
                         rf'^folder {root} \(sha256 [0-9a-f]{{16}}\)$')

  def test_folder_of_mixed_modes_is_rgb(self):
    root = self.create_tempdir().full_path
    arrays = make_folder(root, mode='L')
    Image.new('RGBA', (32, 32), (10, 20, 30, 40)).save(
        f'{root}/train/cat/000.png')
    Image.new('P', (32, 32)).save(f'{root}/test/emu/001.png')
    ds = data.load(f'folder:{root}')
    self.assertEqual(ds.x_train.shape, (18, 32, 32, 3))
    self.assertAllEqual(ds.x_train[0, 0, 0], [10, 20, 30])  # Alpha dropped.
    self.assertAllEqual(ds.x_train[1], np.repeat(arrays['train'][1], 3, -1))

  def test_folder_cache_follows_the_bytes(self):
    root = self.create_tempdir().full_path
    make_folder(root, ext='jpg')
    first = data.load(f'folder:{root}')
    key = first.source[-17:-1]
    cache = os.path.join(data.cache_dir(), f'folder-{key}.npz')
    self.assertTrue(os.path.exists(cache))
    with mock.patch.object(data.plugins, 'read_folder') as read:
      again = data.load(f'folder:{root}')
    read.assert_not_called()  # Served from the cache.
    self.assertAllEqual(again.x_train, first.x_train)
    Image.new('RGB', (32, 32), 'white').save(
        os.path.join(root, 'train', 'cat', '000.jpg'))
    changed = data.load(f'folder:{root}')
    self.assertNotEqual(changed.source, first.source)
    self.assertAllEqual(changed.x_train[0], np.full((32, 32, 3), 255))

  def test_function_datasets(self):
    folder = self.create_tempdir().full_path
    write_module(folder, 'userdata_ok', '''
        import numpy as np
        rng = np.random.default_rng(0)
        x = lambda n, *s: rng.integers(0, 256, (n,) + s, dtype=np.uint8)
        def four():
          return x(20, 8, 8, 3), np.arange(20) % 4, x(6, 8, 8, 3), np.arange(6) % 4
        def keras_style():  # Like keras.datasets: (N, 1) labels, no channels.
          return (x(10, 12, 12), (np.arange(10) % 2)[:, None]), (x(4, 12, 12), np.zeros((4, 1), int))
        def as_dict():
          return {'x_train': x(10, 8, 8, 1), 'y_train': np.zeros(10, np.int32),
                  'x_test': x(2, 8, 8, 1), 'y_test': np.ones(2, np.int32),
                  'num_classes': 100}
        ''')
    sys.path.insert(0, folder)
    self.addCleanup(sys.path.remove, folder)
    for fn, shape, classes in (('four', (20, 8, 8, 3), 4),
                               ('keras_style', (10, 12, 12, 1), 2),
                               ('as_dict', (10, 8, 8, 1), 100)):
      with self.subTest(fn):
        ds = data.load(f'userdata_ok:{fn}')
        self.assertEqual(ds.x_train.shape, shape)
        self.assertEqual(ds.num_classes, classes)
        self.assertEqual(ds.y_train.dtype, np.int64)
        self.assertEqual(ds.y_test.ndim, 1)
        self.assertRegex(ds.source, rf'^userdata_ok:{fn} \(sha256 [0-9a-f]{{16}}\)$')

  def test_prepared_tfds_dataset_with_and_without_config(self):
    root = self.create_tempdir().full_path
    store_tfds(root, 'my_shapes')
    store_tfds(root, 'my_shapes', n=(9, 5), version='1.10.0')
    store_tfds(root, 'my_shapes', n=(7, 5), version='1.9.0')
    ds = data.load('tfds:my_shapes', root)
    self.assertEqual(ds.x_train.shape, (9, 16, 16, 3))  # The newest version.
    self.assertEqual((ds.n_test, ds.num_classes), (5, 3))
    self.assertStartsWith(ds.source, 'tfds my_shapes in ')
    store_tfds(root, 'my_gray', classes=7, shape=(8, 8, 1), config='small')
    ds = data.load('tfds:my_gray/small', root)
    self.assertEqual((ds.x_train.shape, ds.num_classes), ((12, 8, 8, 1), 7))
    with self.assertRaisesRegex(UserError, 'has configs small; use '
                                '--dataset=tfds:my_gray/CONFIG'):
      data.load('tfds:my_gray', root)
    store_tfds(root, 'my_keys', classes=5, keys=('pixels', 'digit'))
    ds = data.load('tfds:my_keys', root)
    self.assertEqual((ds.x_train.shape, ds.num_classes), ((12, 16, 16, 3), 5))


class RandomizationTest(tf.test.TestCase):
  """The six randomization tests on 3-class folders of other sizes."""

  def test_every_randomization_on_any_size(self):
    for size, mode in (((32, 32), 'RGB'), ((64, 64), 'RGB'), ((40, 24), 'L')):
      root = self.create_tempdir().full_path
      make_folder(root, size, mode, n_train=20)
      ds = data.load(f'folder:{root}')
      for labels, p, pixels in (('true', 0, 'none'), ('partial', 0.5, 'none'),
                                ('random', 0, 'none'), ('true', 0, 'shuffled'),
                                ('random', 0, 'random'),
                                ('random', 0, 'gaussian')):
        with self.subTest(f'{size} {mode} {labels} {pixels}'):
          out, rec, changed = corruption.apply(ds, labels, p, pixels, seed=4)
          again = corruption.apply(ds, labels, p, pixels, seed=4)[1]
          self.assertEqual(rec, again)  # Seeded: the same fingerprint.
          self.assertEqual(rec['fingerprint'], corruption.fingerprint(
              out.x_train, out.y_train))
          self.assertEqual(out.x_train.shape, ds.x_train.shape)
          self.assertEqual(out.x_test.shape, ds.x_test.shape)
          self.assertAllEqual(out.y_test, ds.y_test)
          self.assertTrue(set(out.y_train.tolist()) <= {0, 1, 2})
          self.assertEqual(rec['num_changed'], int(changed.sum()))
          if labels == 'random':
            self.assertGreater(rec['changed_fraction'], 0.3)
          if pixels in ('shuffled', 'random'):  # Positions move, not values.
            self.assertAllEqual(np.sort(out.x_train[0], axis=None),
                                np.sort(ds.x_train[0], axis=None))
            self.assertNotAllEqual(out.x_train, ds.x_train)
          if pixels == 'gaussian':
            self.assertEqual(out.x_train.dtype, np.float32)
            self.assertAllClose(out.x_train.mean(axis=(0, 1, 2)),
                                ds.x_train.mean(axis=(0, 1, 2)), rtol=0.05)

  def test_random_pixels_in_chunks_are_one_draw(self):
    images = data.synthetic(50, 1, shape=(64, 64, 3)).x_train
    whole = corruption.random_pixels(images, np.random.default_rng(1), 1 << 30)
    chunked = corruption.random_pixels(images, np.random.default_rng(1), 5000)
    self.assertAllEqual(whole, chunked)


def _one_line(test, e):
  test.assertNotIn('\n', str(e))
  return str(e)


class BadInputTest(tf.test.TestCase):
  """Every bad plug-in: a one-line UserError naming the fix, no run folder."""

  def check(self, dataset, expect, *args):
    out = os.path.join(self.create_tempdir().full_path, 'run')
    argv = ['train', f'--dataset={dataset}', '--model=mlp_1x512',
            '--epochs=1', f'--output_dir={out}', *args]
    with self.assertRaises(UserError) as e:
      train_lib.train_and_evaluate(cli.config_from_argv(argv),
                                   log=lambda line: None)
    self.assertRegex(_one_line(self, e.exception), expect)
    self.assertFalse(os.path.exists(out))

  def test_bad_folders(self):
    tmp = self.create_tempdir().full_path
    self.check(f'folder:{tmp}/none', r'/none does not exist; pass a folder')
    os.makedirs(f'{tmp}/a/train/cat')
    self.check(f'folder:{tmp}/a', r'has no test/ folder; put the images')
    os.makedirs(f'{tmp}/b/train')
    os.makedirs(f'{tmp}/b/test')
    self.check(f'folder:{tmp}/b', r'train/ holds no class folders')
    make_folder(f'{tmp}/c', classes=('cat',))
    self.check(f'folder:{tmp}/c', r'has one class \(cat\); .* at least two')
    make_folder(f'{tmp}/d')
    os.rename(f'{tmp}/d/test/emu', f'{tmp}/d/test/yak')
    self.check(f'folder:{tmp}/d', r'test classes differ from training classes '
               r'\(only in train/: emu; only in test/: yak\)')
    make_folder(f'{tmp}/e')
    for f in os.listdir(f'{tmp}/e/test/dog'):
      os.remove(f'{tmp}/e/test/dog/{f}')
    self.check(f'folder:{tmp}/e', r'test/dog/ holds no .png, .jpg or .jpeg')
    make_folder(f'{tmp}/f')
    Image.new('RGB', (64, 48)).save(f'{tmp}/f/test/emu/001.png')
    self.check(f'folder:{tmp}/f', r'images of mixed sizes: train/cat/000.png '
               r'is 32x32, test/emu/001.png is 64x48; resize')
    make_folder(f'{tmp}/g')
    with open(f'{tmp}/g/train/dog/003.png', 'wb') as f:
      f.write(b'not a png')
    self.check(f'folder:{tmp}/g', r'cannot read train/dog/003.png \(.*\); '
               'replace or remove the file')

  def test_bad_functions(self):
    folder = self.create_tempdir().full_path
    write_module(folder, 'userdata_bad', '''
        import numpy as np
        x = np.zeros((8, 8, 8, 3), np.uint8)
        y = np.arange(8) % 2
        def floats(): return x.astype(np.float32), y, x, y
        def ragged(): return x, y[:5], x, y
        def labels(): return {'x_train': x, 'y_train': y + 2, 'x_test': x,
                              'y_test': y, 'num_classes': 3}
        def one_class(): return x, 0 * y, x, 0 * y
        def sizes(): return x, y, x[:, :4], y
        def text(): return 'data'
        NOT_A_FUNCTION = 3
        ''')
    write_module(folder, 'userdata_broken', 'import no_such_dependency\n')
    with mock.patch.object(sys, 'path', [folder] + sys.path):
      for spec, expect in (
          ('no_such_module:load', 'no module no_such_module on the Python '
           'path; put its folder on PYTHONPATH'),
          ('userdata_broken:load', r'importing userdata_broken failed \(No '
           "module named 'no_such_dependency'\\); install"),
          ('userdata_bad:missing', 'has no function missing'),
          ('userdata_bad:NOT_A_FUNCTION', 'has no function NOT_A_FUNCTION'),
          ('userdata_bad:floats', 'x_train has dtype float32; return uint8'),
          ('userdata_bad:ragged', r'x_train has shape \(8, 8, 8, 3\) and '
           r'y_train \(5,\)'),
          ('userdata_bad:labels', r'labels lie outside 0\.\.2'),
          ('userdata_bad:one_class', 'num_classes is 1, not an integer >= 2'),
          ('userdata_bad:sizes', r'training images are \(8, 8, 3\), test '
           r'images \(4, 8, 3\)'),
          ('userdata_bad:text', 'the function returned str; return uint8')):
        with self.subTest(spec):
          self.check(spec, expect)

  def test_bad_specs_and_unprepared_tfds(self):
    self.check('svhn', 'not known; use one of cifar10, mnist, imagenet, '
               r'tfds:NAME\[/CONFIG\], folder:PATH or package.module:function')
    self.check('tfds:CIFAR', 'not a tfds name; use tfds:NAME')
    self.check('a-b:c', 'is not package.module:function')
    empty = self.create_tempdir().full_path
    self.check('tfds:my_shapes', f'no my_shapes data found in {empty} .*; '
               r'prepare it there .* --data_dir=DIR or set ZHANG2017_DATA_DIR',
               f'--data_dir={empty}')
    store_tfds(empty, 'no_test', splits=('train',))
    self.check('tfds:no_test', "has splits train, no 'test'; use "
               'package.module:function', f'--data_dir={empty}')

  def test_the_binary_exits_2_with_one_line(self):
    tmp = self.create_tempdir().full_path
    make_folder(f'{tmp}/mixed')
    Image.new('RGB', (28, 28)).save(f'{tmp}/mixed/train/dog/009.png')
    store_tfds(tmp, 'no_test', splits=('train',))
    # Two of the cases above (each run starts a Python with Keras: ~10 s
    # here); the second imports tfds, and TensorFlow under JAX, quietly.
    for spec, expect in ((f'folder:{tmp}/mixed', 'images of mixed sizes'),
                         ('tfds:no_test', "no 'test'")):
      with self.subTest(spec):
        out = os.path.join(tmp, 'run')
        p = testutil.run_module(
            'zhang2017.train', f'--dataset={spec}', '--model=mlp_1x512',
            '--epochs=1', f'--data_dir={tmp}', f'--output_dir={out}',
            env={'KERAS_BACKEND': 'jax'})  # Starts faster.
        self.assertEqual(p.returncode, 2, p.stderr[-2000:])
        lines = p.stderr.strip().splitlines()
        self.assertLen(lines, 1, p.stderr)
        self.assertRegex(lines[0], f'^error: .*{expect}')
        self.assertFalse(os.path.exists(out))


class OnlineTest(tf.test.TestCase):
  """The built-ins without local data: downloaded through tfds only when
  allowed and online (mocked here: these machines have no internet)."""

  def test_probe_gives_up_within_its_timeout(self):
    t0 = time.time()
    tfds_datasets.online('storage.googleapis.com', timeout=2.0)
    self.assertLess(time.time() - t0, 3.0)

  def test_offline_is_one_line_naming_data_dir(self):
    empty = self.create_tempdir().full_path
    with mock.patch.dict(os.environ), mock.patch.object(
        tfds_datasets, 'online', return_value=False) as online:
      del os.environ['ZHANG2017_DOWNLOAD']
      with self.assertRaises(UserError) as e:
        data.load('cifar10', empty)
    online.assert_called_once_with('www.cs.toronto.edu')
    self.assertRegex(_one_line(self, e.exception),
                     f'^no cifar10 data found in {empty} .*--data_dir=DIR '
                     'or set ZHANG2017_DATA_DIR')
    with mock.patch.object(tfds_datasets, 'online') as online:
      with self.assertRaisesRegex(UserError, 'ZHANG2017_DATA_DIR'):
        data.load('mnist', empty)  # ZHANG2017_DOWNLOAD=0 (conftest).
    online.assert_not_called()

  def test_online_prepares_then_reads(self):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path

    class Builder:  # What tfds.builder('mnist') does, without the network.
      data_dir = os.path.join(root, 'mnist', '3.0.1')

      def download_and_prepare(self):
        store_tfds(root, 'mnist', classes=10, shape=(28, 28, 1))

    lines = []
    with mock.patch.dict(os.environ, {'ZHANG2017_DOWNLOAD': ''}), \
        mock.patch.object(tfds_datasets, 'online', return_value=True), \
        mock.patch.object(tfds, 'builder', return_value=Builder()) as b:
      ds = data.load('mnist', root, log=lines.append)
    b.assert_called_once_with('mnist', data_dir=root)
    self.assertEqual((ds.x_train.shape, ds.num_classes), ((12, 28, 28, 1), 10))
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], 'downloading mnist with tensorflow_datasets')


class EndToEndTest(tf.test.TestCase):
  """The binary on generated folders: complete result.json with the record."""

  def test_random_labels_and_gaussian_pixels(self):
    tmp = self.create_tempdir().full_path
    for size, extra in (((32, 32), []), ((64, 64), ['--pixels=gaussian'])):
      with self.subTest(f'{size} {extra}'):
        root = os.path.join(tmp, f'{size[0]}')
        make_folder(root, size, n_train=16)
        out = os.path.join(tmp, f'run{size[0]}')
        p = testutil.run_module(
            'zhang2017.train', f'--dataset=folder:{root}',
            '--model=mlp_1x512', '--labels=random', '--epochs=2',
            '--batch_size=16', f'--output_dir={out}', *extra)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(os.path.join(out, results.RESULT)) as f:
          result = json.load(f)
        self.assertEqual(set(result), set(results.RESULT_KEYS))
        self.assertEqual(result['train_size'], 48)
        self.assertEqual(result['epochs'], 2)
        rec = result['corruption']
        self.assertEqual((rec['labels'], rec['pixels']),
                         ('random', extra[0][9:] if extra else 'none'))
        self.assertRegex(rec['fingerprint'], '^[0-9a-f]{16}$')
        self.assertStartsWith(result['provenance']['dataset_source'],
                              f'folder {root} (sha256 ')


if __name__ == '__main__':
  tf.test.main()
