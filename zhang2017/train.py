r"""Trains one of the paper's models on (randomized) data and writes its result.

  python -m zhang2017.train --dataset=cifar10 --model=mlp_1x512 \
      --labels=random --output_dir=/tmp/run
  python -m zhang2017.train --flagfile=flags/table1/mlp_1x512_random.flags \
      --output_dir=/tmp/run

Defaults are the paper's (Appendix A). Bad input exits with status 2 and one
line; a killed run resumes when started again with the same flags.
"""

# pylint: disable=g-import-not-at-top,wrong-import-position
from zhang2017 import cli

cli.quiet_import_keras()

from absl import flags

from zhang2017 import config as config_lib
from zhang2017 import corruption
from zhang2017 import data
from zhang2017 import models
from zhang2017 import results
from zhang2017 import training
from zhang2017.errors import UserError

_DATASET = flags.DEFINE_enum('dataset', 'cifar10', data.DATASETS, 'Dataset.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Folder with the dataset files (default: '
    '$ZHANG2017_DATA_DIR, then the tfds default).')
_MODEL = flags.DEFINE_enum('model', 'inception_small', models.MODELS,
                           'Architecture (PAPER.md section 3).')
_LABELS = flags.DEFINE_enum('labels', 'true', corruption.LABEL_KINDS,
                            'true, partial (with --corrupt_prob) or random.')
_CORRUPT_PROB = flags.DEFINE_float(
    'corrupt_prob', 0.0, 'Probability that a training label is redrawn '
    'uniformly (only with --labels=partial).')
_PIXELS = flags.DEFINE_enum('pixels', 'none', corruption.PIXEL_KINDS,
                            'Image randomization.')
_RANDOM_CROP = flags.DEFINE_bool(
    'random_crop', False, 'Random 28x28 training crops (test: centre crop).')
_AUGMENT = flags.DEFINE_bool(
    'augment', False, 'Random crops, horizontal flips and rotations up to 25 '
    'degrees (the appendix\'s "augmentation"; ImageNet: flips).')
_WEIGHT_DECAY = flags.DEFINE_float(
    'weight_decay', 0.0, 'wd of a wd * sum(w^2) / 2 penalty on kernels.')
_DROPOUT = flags.DEFINE_float('dropout', 0.0,
                              'Dropout rate before the classifier.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Mini-batch size.')
_LEARNING_RATE = flags.DEFINE_float(
    'learning_rate', None, 'Initial learning rate (default: 0.1 for '
    'Inception, 0.01 for AlexNet and the MLPs).')
_LR_DECAY = flags.DEFINE_float('lr_decay', 0.95,
                               'Learning rate factor per epoch.')
_MOMENTUM = flags.DEFINE_float('momentum', 0.9, 'SGD momentum.')
_EPOCHS = flags.DEFINE_integer(
    'epochs', 100, 'Epoch limit; the run stops earlier once it fits the '
    'training set (100% training accuracy).')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'Seed for the corruption, subset, initialization and order.')
_TRAIN_SIZE = flags.DEFINE_integer(
    'train_size', None, 'Use a fixed, seeded subset of this many training '
    'examples (default: all).')
_EVAL_BATCH_SIZE = flags.DEFINE_integer('eval_batch_size', 1000,
                                        'Batch size for evaluation.')
_MIXED_PRECISION = flags.DEFINE_bool(
    'mixed_precision', False, 'bfloat16 compute (float32 weights).')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Run folder: result.json, history.csv, tb/.')


def config_from_flags():
  """A validated `Config` from the parsed flags."""
  return config_lib.validate(config_lib.Config(
      dataset=_DATASET.value, data_dir=_DATA_DIR.value, model=_MODEL.value,
      labels=_LABELS.value, corrupt_prob=_CORRUPT_PROB.value,
      pixels=_PIXELS.value, random_crop=_RANDOM_CROP.value, augment=_AUGMENT.value,
      weight_decay=_WEIGHT_DECAY.value, dropout=_DROPOUT.value,
      batch_size=_BATCH_SIZE.value, learning_rate=_LEARNING_RATE.value,
      lr_decay=_LR_DECAY.value, momentum=_MOMENTUM.value,
      epochs=_EPOCHS.value, seed=_SEED.value, train_size=_TRAIN_SIZE.value,
      eval_batch_size=_EVAL_BATCH_SIZE.value,
      mixed_precision=_MIXED_PRECISION.value, output_dir=_OUTPUT_DIR.value))


def main(argv):
  results.git_commit()  # Record the code as it is at the start.
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {" ".join(argv[1:])}; flags take '
                    'the form --name=value')
  cfg = config_from_flags()
  training.train_and_evaluate(cfg)


if __name__ == '__main__':
  cli.run(main)
