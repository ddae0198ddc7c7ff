"""ImageNet for Table 2, a data source of the one training loop: streamed
with tf.data (it does not fit in memory), TensorFlow backend only.

Sources, under `data_dir`:

* an image folder, `<data_dir>/imagenet/{train,validation}/<synset>/*.JPEG`
  (or `train/` and `validation/` directly in data_dir); synsets sorted give
  the label ids;
* tfds `imagenet2012`, prepared under data_dir, or prepared here from the
  manual download (`<data_dir>/downloads/manual/ILSVRC2012_img_{train,val}.tar`).

The image folder loads as a `data.Dataset` of file names, so the subset and
the label corruption are the in-memory datasets' own functions, and each
epoch trains on full batches in the loop's seeded order. tfds is a stream:
its labels are corrupted from a hash of the file name and the seed (so the
corrupted label of an image never changes between epochs), `--train_size`
and `--test_size` take the first examples of a split, and the order is tfds'
seeded file and buffer shuffle. Training accuracy is measured on a fixed,
seeded sample of `EVAL_TRAIN_SIZE` training images (a full pass over 1.28M
images per epoch would cost as much as training).
"""

import glob
import os

import keras
import numpy as np

from zhang2017.data import batches
from zhang2017.data import datasets as data
from zhang2017.errors import UserError

IMAGE_SIZE = 299
EVAL_TRAIN_SIZE = 50_000


def _folder_root(data_dir):
  for root in (os.path.join(data_dir, 'imagenet'), data_dir):
    if os.path.isdir(os.path.join(root, 'train')) and os.path.isdir(
        os.path.join(root, 'validation')):
      return root
  return None


def folder_split(root, split, synsets=None):
  """(file paths, labels, synsets) of an image-folder split."""
  synsets = synsets or sorted(
      d for d in os.listdir(os.path.join(root, 'train'))
      if os.path.isdir(os.path.join(root, 'train', d)))
  files, labels = [], []
  for i, s in enumerate(synsets):
    found = sorted(glob.glob(os.path.join(root, split, s, '*')))
    files += found
    labels += [i] * len(found)
  if not files:
    raise UserError(f'no images in {os.path.join(root, split)}/<synset>/; '
                    'check the ImageNet folder layout (BUILD.md)')
  return np.array(files), np.array(labels, np.int64), synsets


def _decode(path_or_bytes, train, augment, is_path=True):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  raw = tf.io.read_file(path_or_bytes) if is_path else path_or_bytes
  img = tf.io.decode_image(raw, channels=3, expand_animations=False)
  # Shorter side to 320/299 of the crop, then a (random or central) crop.
  shape = tf.cast(tf.shape(img)[:2], tf.float32)
  scale = (IMAGE_SIZE * 1.07) / tf.reduce_min(shape)
  size = tf.cast(tf.math.ceil(shape * scale), tf.int32)
  img = tf.image.resize(img, size, antialias=True)
  if train and augment:
    img = tf.image.random_crop(img, (IMAGE_SIZE, IMAGE_SIZE, 3))
  else:
    img = tf.image.resize_with_crop_or_pad(img, IMAGE_SIZE, IMAGE_SIZE)
  return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)


def folder_dataset(files, labels, train, augment, batch_size):
  """A batched tf.data pipeline over image files, in the given order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ds = tf.data.Dataset.from_tensor_slices((files, labels))
  ds = ds.map(lambda f, y: (_decode(f, train, augment), y),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def hashed_labels(file_names, labels, num_classes, prob, seed):
  """Per-example corruption for streamed data, a pure function of the name.

  With probability `prob` (from one hash of seed and file name) the label is
  replaced by a class from a second hash; works inside tf.data.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  key = tf.strings.join([tf.strings.as_string(seed), file_names], '/')
  u = tf.cast(tf.strings.to_hash_bucket_fast(key + '#p', 1 << 30),
              tf.float64) / (1 << 30)
  new = tf.strings.to_hash_bucket_fast(key + '#y', num_classes)
  return tf.where(u < prob, new, tf.cast(labels, tf.int64))


def load(data_dir):
  """ImageNet under `data_dir`: a `data.Dataset` of file names (image
  folder) or a `TfdsImagenet`.

  Raises:
    UserError: another backend, no folder, or no ImageNet in it.
  """
  if keras.backend.backend() != 'tensorflow':
    raise UserError('ImageNet streams through tf.data: run it with '
                    'KERAS_BACKEND=tensorflow')
  data_dir = data.default_data_dir(data_dir)
  if not data_dir or not os.path.isdir(data_dir):
    raise UserError(f'ImageNet needs --data_dir, a folder (got {data_dir!r}); '
                    'see BUILD.md')
  root = _folder_root(data_dir)
  if root is None:
    return TfdsImagenet(data_dir)
  files, labels, synsets = folder_split(root, 'train')
  vfiles, vlabels, _ = folder_split(root, 'validation', synsets)
  rel = lambda fs: np.array([os.path.relpath(f, root) for f in fs])
  return data.Dataset('imagenet', rel(files), labels, rel(vfiles), vlabels,
                      len(synsets), f'image folder {root}', root=root,
                      image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))


def _eval_sample(n, seed):
  """The fixed training images evaluated each epoch (None: all of them)."""
  if n <= EVAL_TRAIN_SIZE:
    return None
  rng = np.random.default_rng([seed, 4])
  return np.sort(rng.choice(n, EVAL_TRAIN_SIZE, replace=False))


class FolderInputs:
  """Pipelines over an image folder's (corrupted) `data.Dataset`."""

  def __init__(self, ds, cfg):
    self.ds, self.cfg = ds, cfg
    self.eval_train_index = _eval_sample(ds.n_train, cfg.seed)

  def _paths(self, names):
    return np.array([os.path.join(self.ds.root, f) for f in names])

  def train(self, epoch, perm):
    """Full batches of decoded (augmented) images in the loop's order."""
    del epoch
    idx = batches.epoch_batches(perm, self.cfg.batch_size).ravel()
    return folder_dataset(self._paths(self.ds.x_train[idx]),
                          self.ds.y_train[idx], True, self.cfg.augment,
                          self.cfg.batch_size)

  def eval(self, split):
    """Centre crops of the training sample or the validation images."""
    if split == 'train':
      i = self.eval_train_index
      x, y = ((self.ds.x_train, self.ds.y_train) if i is None
              else (self.ds.x_train[i], self.ds.y_train[i]))
    else:
      x, y = self.ds.x_test, self.ds.y_test
    return folder_dataset(self._paths(x), y, False, False,
                          self.cfg.eval_batch_size)


class TfdsImagenet:
  """A prepared (or preparable) tfds `imagenet2012` under data_dir."""

  name, num_classes = 'imagenet', 1000
  input_shape = (IMAGE_SIZE, IMAGE_SIZE, 3)

  def __init__(self, data_dir):
    try:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise UserError('ImageNet needs tensorflow-datasets or an image folder; '
                      'pip install tensorflow-datasets') from None
    builder = tfds.builder('imagenet2012', data_dir=data_dir)
    if not builder.is_prepared():
      manual = os.path.join(data_dir, 'downloads', 'manual')
      if not os.path.exists(os.path.join(manual, 'ILSVRC2012_img_train.tar')):
        raise UserError(f'no ImageNet in {data_dir}: neither an image folder '
                        'nor tfds imagenet2012 nor the manual download in '
                        f'{manual}; see BUILD.md')
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual))
    self.builder, self._tfds = builder, tfds
    self.source = f'tfds imagenet2012 in {builder.data_dir}'
    self.n_train = builder.info.splits['train'].num_examples
    self.n_test = builder.info.splits['validation'].num_examples
    self.prob, self.train_split, self.test_split = 0.0, 'train', 'validation'

  def prepare(self, cfg):
    """Applies the flags' sizes and label corruption: (self, record, None)."""
    if cfg.pixels != 'none':
      raise UserError('pixel randomizations need the ImageNet image folder; '
                      'use --pixels=none with tfds imagenet2012')
    for name, size, n in (('train_size', cfg.train_size, self.n_train),
                          ('test_size', cfg.test_size, self.n_test)):
      if size is not None and size > n:
        raise UserError(f'--{name}={size} is larger than the {n:,} images of '
                        f'imagenet; use at most {n} (or leave it unset)')
    if cfg.train_size:
      self.train_split, self.n_train = f'train[:{cfg.train_size}]', cfg.train_size
    if cfg.test_size:
      self.test_split, self.n_test = (f'validation[:{cfg.test_size}]',
                                      cfg.test_size)
    self.prob = {'true': 0.0, 'random': 1.0}.get(cfg.labels, cfg.corrupt_prob)
    record = {'labels': cfg.labels, 'corrupt_prob': self.prob,
              'pixels': cfg.pixels, 'seed': cfg.seed, 'changed_fraction': None,
              'num_changed': None, 'fingerprint': None,
              'method': 'hash of seed and file name (imagenet.hashed_labels)'}
    return self, record, None


class TfdsInputs:
  """Pipelines over a `TfdsImagenet` stream."""

  eval_train_index = None  # The first EVAL_TRAIN_SIZE training examples.

  def __init__(self, src, cfg):
    self.src, self.cfg = src, cfg

  def _stream(self, split, train, epoch=0, take=None, batch_size=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    src, cfg = self.src, self.cfg
    ds = src.builder.as_dataset(
        split=split, shuffle_files=train,
        read_config=src._tfds.ReadConfig(shuffle_seed=cfg.seed + epoch))  # pylint: disable=protected-access
    if take:
      ds = ds.take(take)
    if train:
      ds = ds.shuffle(10_000, seed=cfg.seed + epoch)

    def prep(ex):
      y = ex['label']
      if split.startswith('train') and src.prob > 0:
        y = hashed_labels(ex['file_name'], y, 1000, src.prob, cfg.seed)
      image = _decode(tf.io.encode_jpeg(ex['image']), train, cfg.augment,
                      is_path=False)
      return image, y
    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size or cfg.batch_size,
                    drop_remainder=train).prefetch(tf.data.AUTOTUNE)

  def train(self, epoch, perm):
    """Full batches of the shuffled stream (`perm` cannot order a stream)."""
    del perm
    return self._stream(self.src.train_split, True, epoch)

  def eval(self, split):
    """The first EVAL_TRAIN_SIZE training examples, or the validation set."""
    if split == 'train':
      return self._stream(self.src.train_split, False, take=EVAL_TRAIN_SIZE,
                          batch_size=self.cfg.eval_batch_size)
    return self._stream(self.src.test_split, False,
                        batch_size=self.cfg.eval_batch_size)


def inputs(ds, cfg):
  """The tf.data pipelines the trainer reads for an ImageNet run."""
  if isinstance(ds, TfdsImagenet):
    return TfdsInputs(ds, cfg)
  return FolderInputs(ds, cfg)
