"""ImageNet for Table 2: streamed with tf.data (it does not fit in memory).

Sources, under `data_dir` (TensorFlow backend only):

* an image folder, `<data_dir>/imagenet/{train,validation}/<synset>/*.JPEG`
  (or `train/` and `validation/` directly in data_dir); synsets sorted give
  the label ids;
* tfds `imagenet2012`, prepared under data_dir, or prepared here from the
  manual download (`<data_dir>/downloads/manual/ILSVRC2012_img_{train,val}.tar`).

Labels are corrupted once, by example: for the folder source with the same
numpy function as the in-memory datasets; for tfds from a hash of the file
name and the seed, so the corrupted label of an image never changes between
epochs. Training accuracy is measured on a fixed, seeded sample of
`EVAL_TRAIN_SIZE` training images (a full pass over 1.28M images per epoch
would cost as much as training).
"""

import contextlib
import glob
import math
import os
import time

import keras
import numpy as np

from zhang2017 import corruption
from zhang2017 import distribute
from zhang2017 import models
from zhang2017 import results
from zhang2017 import training
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


def folder_dataset(files, labels, train, augment, batch_size, seed, epoch=0):
  """A batched tf.data pipeline over image files, shuffled per epoch."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ds = tf.data.Dataset.from_tensor_slices((files, labels))
  if train:
    ds = ds.shuffle(len(files), seed=seed * 100_003 + epoch)
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


def _tfds_splits(data_dir, cfg, prob):
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
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def make(split, train, epoch=0, take=None):
    ds = builder.as_dataset(split=split, shuffle_files=train,
                            read_config=tfds.ReadConfig(
                                shuffle_seed=cfg.seed + epoch))
    if take:
      ds = ds.take(take)
    if train:
      ds = ds.shuffle(10_000, seed=cfg.seed + epoch)
    def prep(ex):
      y = ex['label']
      if split == 'train' and prob > 0:
        y = hashed_labels(ex['file_name'], y, 1000, prob, cfg.seed)
      return _decode(tf.io.encode_jpeg(ex['image']), train, cfg.augment,
                     is_path=False), y
    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(
        cfg.batch_size).prefetch(tf.data.AUTOTUNE)
  n = builder.info.splits['train'].num_examples
  return make, n, 1000, f'tfds imagenet2012 in {builder.data_dir}'


def train_and_evaluate(cfg, log=print):
  """Table 2 runs: Inception V3 on ImageNet, streamed (TensorFlow backend)."""
  if keras.backend.backend() != 'tensorflow':
    raise UserError('ImageNet streams through tf.data: run it with '
                    'KERAS_BACKEND=tensorflow')
  from zhang2017 import data  # pylint: disable=g-import-not-at-top
  data_dir = data.default_data_dir(cfg.data_dir)
  if not data_dir or not os.path.isdir(data_dir):
    raise UserError(f'ImageNet needs --data_dir (got {data_dir!r}); see '
                    'BUILD.md')
  start = time.time()
  prob = {'true': 0.0, 'random': 1.0}.get(cfg.labels, cfg.corrupt_prob)
  rng = np.random.default_rng([cfg.seed, 4])
  root = _folder_root(data_dir)
  record = {'labels': cfg.labels, 'corrupt_prob': prob, 'pixels': cfg.pixels,
            'seed': cfg.seed}
  if cfg.pixels != 'none':
    raise UserError('pixel randomizations are not implemented for streamed '
                    'ImageNet; use --pixels=none')
  if root:
    files, labels, synsets = folder_split(root, 'train')
    vfiles, vlabels, _ = folder_split(root, 'validation', synsets)
    if cfg.train_size:
      keep = np.sort(rng.choice(len(files), min(cfg.train_size, len(files)),
                                replace=False))
      files, labels = files[keep], labels[keep]
    noisy, changed = corruption.corrupt_labels(
        labels, len(synsets), prob, np.random.default_rng([cfg.seed, 1]))
    record['changed_fraction'] = float(changed.mean())
    record['fingerprint'] = corruption.fingerprint(
        np.array([os.path.relpath(f, root) for f in files]).astype('S'), noisy)
    num_classes, n, source = len(synsets), len(files), f'image folder {root}'
    sample = np.sort(rng.choice(n, min(n, EVAL_TRAIN_SIZE), replace=False))

    def make(split, train, epoch=0, take=None):
      del take
      if split == 'train':
        f, y = (files, noisy) if train else (files[sample], noisy[sample])
      else:
        f, y = vfiles, vlabels
      return folder_dataset(f, y, train, cfg.augment, cfg.batch_size,
                            cfg.seed, epoch)
  else:
    make, n, num_classes, source = _tfds_splits(data_dir, cfg, prob)

  os.makedirs(cfg.output_dir, exist_ok=True)
  precision = distribute.setup(cfg.seed, cfg.mixed_precision)
  strategy = distribute.get_strategy()
  steps_per_epoch = math.ceil(n / cfg.batch_size)
  with strategy.scope() if strategy else contextlib.nullcontext():
    model = models.build(cfg.model, num_classes, (IMAGE_SIZE, IMAGE_SIZE, 3),
                         augment=cfg.augment, weight_decay=cfg.weight_decay,
                         dropout=cfg.dropout, seed=cfg.seed)
    optimizer = keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(
            cfg.lr, steps_per_epoch, cfg.lr_decay, staircase=True),
        momentum=cfg.momentum)
    top5 = keras.metrics.SparseTopKCategoricalAccuracy(
        min(5, num_classes), name='top5')
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=['accuracy', top5])
  ckpt = os.path.join(cfg.output_dir, training.CHECKPOINT)
  meta = training.load_checkpoint(ckpt, model, optimizer, cfg.run_key())
  history = meta['history'] if meta else []
  status = meta['status'] if meta else None
  while status is None:
    epoch = len(history)
    t0 = time.time()
    h = model.fit(make('train', True, epoch), epochs=epoch + 1,
                  initial_epoch=epoch, verbose=0)
    tr = model.evaluate(make('train', False, take=EVAL_TRAIN_SIZE),
                        verbose=0, return_dict=True)
    te = model.evaluate(make('validation', False), verbose=0,
                        return_dict=True)
    history.append({
        'epoch': epoch + 1, 'step': (epoch + 1) * steps_per_epoch,
        'learning_rate': cfg.lr * cfg.lr_decay ** epoch,
        'train_loss': h.history['loss'][-1], 'train_eval_loss': tr['loss'],
        'train_accuracy': tr['accuracy'], 'train_top5': tr['top5'],
        'test_loss': te['loss'], 'test_accuracy': te['accuracy'],
        'test_top5': te['top5'], 'seconds': round(time.time() - t0, 3)})
    log(f'epoch {epoch + 1}/{cfg.epochs}  train top-1 '
        f'{tr["accuracy"]:.4f}  test top-1 {te["accuracy"]:.4f}  top-5 '
        f'{te["top5"]:.4f}')
    status = training.epoch_status((h.history['loss'][-1],),
                                   tr['accuracy'] >= 1.0, epoch, cfg.epochs)
    results.write_csv(os.path.join(cfg.output_dir, results.HISTORY), history)
    training.save_checkpoint(ckpt, model, optimizer,
                             {'run_key': cfg.run_key(), 'history': history,
                              'status': status})
  last = history[-1]
  result = {
      'status': status, 'train_accuracy': last['train_accuracy'],
      'test_accuracy': last['test_accuracy'],
      'train_top5': last['train_top5'], 'test_top5': last['test_top5'],
      'epochs': len(history),
      'epochs_to_fit': len(history) if status == 'fitted' else None,
      'steps_per_epoch': steps_per_epoch, 'train_size': n,
      'train_accuracy_sample': min(n, EVAL_TRAIN_SIZE),
      'params': models.count_params(model),
      'flags': {**cfg.to_dict(), 'learning_rate': cfg.lr},
      'corruption': record,
      'provenance': results.provenance(source, time.time() - start,
                                       precision),
  }
  results.write_json(os.path.join(cfg.output_dir, results.RESULT), result)
  os.remove(ckpt)
  return result
