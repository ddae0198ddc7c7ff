r"""Theorem 1 on a whole training set: the depth-two network that fits it,
or its depth-k variant.

  python -m zhang2017.expressivity --dataset=cifar10 --labels=random
  python -m zhang2017.expressivity --dataset=cifar10 --labels=random --depth=10

Builds c(x) = sum_j w_j relu(<a, x> - b_j) (2n + d weights) for all n
training images on their (corrupted) class ids and reports how exactly it fits
them; with --depth=k >= 3, the same function as k layers of width at most
ceil(n / (k - 2)) + 3 with at most d + 3n + 6k nonzero weights
(`expressivity_lib.deep_layers`), evaluated layer by layer. Writes result.json
(default results/theory/expressivity-<dataset>-<labels>[-depth<k>]).
"""

import os
import time

import numpy as np

from zhang2017 import cli

cli.quiet_import_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from zhang2017.training import config as config_lib
from zhang2017.data import corruption
from zhang2017.data import datasets as data
from zhang2017.theory import expressivity_lib
from zhang2017.training import results

_DATASET = flags.DEFINE_enum('dataset', 'cifar10', ['cifar10', 'mnist'],
                             'Dataset (all training images).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Default $ZHANG2017_DATA_DIR.')
_LABELS = flags.DEFINE_enum('labels', 'random', corruption.LABEL_KINDS,
                            'Targets to fit.')
_CORRUPT_PROB = flags.DEFINE_float('corrupt_prob', 0.0, 'For --labels=partial.',
                                   lower_bound=0.0, upper_bound=1.0)
_SEED = flags.DEFINE_integer('seed', 0, 'Labels and projection seed.',
                             lower_bound=0, upper_bound=config_lib.MAX_SEED)
_TRAIN_SIZE = flags.DEFINE_integer('train_size', None, 'Seeded subset.',
                                   lower_bound=1)
_DEPTH = flags.DEFINE_integer(
    'depth', 2, 'Weight layers: 2 is Theorem 1; k >= 3 the depth-k variant '
    '(width O(n/k), O(n + d) weights).', lower_bound=2)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Run folder.')


def _deep(net, x, y, depth):
  """The depth-k network's fit on the training set: result fields."""
  n, d = len(y), int(np.prod(x.shape[1:]))
  layers = expressivity_lib.deep_layers(net['a'], net['b'], net['w'],
                                        net['z_min'], depth)
  out = expressivity_lib.deep_predict(layers, x)
  return {
      'depth': depth,
      'train_accuracy': float(np.mean(np.rint(out) == y)),
      'max_abs_residual': float(np.abs(out - y).max()),
      'weights': int(sum(w.nnz for w, _ in layers)),
      'weight_bound': d + 3 * n + 6 * depth,
      'biases': int(sum(len(bias) for _, bias in layers)),
      'max_width': int(max(w.shape[1] for w, _ in layers)),
      'width_bound': -(-n // (depth - 2)) + 3,
      'paper': 'depth-k variant of Theorem 1: width O(n/k), O(n + d) weights',
      'summary_keys': ['train_accuracy', 'depth', 'weights', 'weight_bound',
                       'max_width', 'width_bound', 'max_abs_residual',
                       'build_seconds'],
  }


def run(dataset, data_dir, labels, corrupt_prob, seed, train_size, depth=2):
  """Builds the network and measures the fit; returns the result dict."""
  t0 = time.time()
  ds = data.subset(data.load(dataset, data_dir), train_size, seed)
  ds, record, _ = corruption.apply(ds, labels, corrupt_prob, 'none', seed)
  t1 = time.time()
  net = expressivity_lib.fit(ds.x_train, ds.y_train, seed)
  n, d = len(ds.y_train), int(np.prod(ds.x_train.shape[1:]))
  residual = np.abs(net['fitted'] - ds.y_train)
  params = len(net['a']) + len(net['b']) + len(net['w'])
  deep = _deep(net, ds.x_train, ds.y_train, depth) if depth > 2 else {}
  build_seconds = time.time() - t1
  r = {
      'train_accuracy': float(np.mean(np.rint(net['fitted']) == ds.y_train)),
      'max_abs_residual': float(residual.max()),
      'params': params, 'two_n_plus_d': 2 * n + d, 'n': n, 'd': d,
      'min_diagonal': net['min_diagonal'],
      'max_abs_weight': float(np.abs(net['w']).max()),
      'max_abs_projection': net['z_max_abs'],
      'projection_seed': net['seed'],
      'build_seconds': round(build_seconds, 2),
      'paper': 'Theorem 1: 2n + d weights fit any n labels exactly',
      'summary_keys': ['train_accuracy', 'params', 'two_n_plus_d',
                       'max_abs_residual', 'min_diagonal', 'build_seconds'],
      'flags': {'dataset': dataset, 'labels': labels,
                'corrupt_prob': corrupt_prob, 'seed': seed,
                'train_size': train_size, 'depth': depth},
      'corruption': record,
      'provenance': results.provenance(ds.source, time.time() - t0,
                                       'float64'),
      **deep,
  }
  r['status'] = 'fitted' if r['train_accuracy'] == 1.0 else 'not_fitted'
  return r


def main(argv):
  results.git_commit()  # Record the code as it is at the start.
  del argv
  out = _OUTPUT_DIR.value or os.path.join(
      results.ROOT, 'results', 'theory',
      f'expressivity-{_DATASET.value}-{_LABELS.value}' +
      (f'-depth{_DEPTH.value}' if _DEPTH.value > 2 else ''))
  print(f'run folder: {out}', flush=True)
  cli.check_output_folder('output_dir', out)
  r = run(_DATASET.value, _DATA_DIR.value, _LABELS.value, _CORRUPT_PROB.value,
          _SEED.value, _TRAIN_SIZE.value, _DEPTH.value)
  os.makedirs(out, exist_ok=True)
  results.write_json(os.path.join(out, results.RESULT), r)
  if _DEPTH.value > 2:
    size = (f'depth {r["depth"]}, {r["weights"]:,} nonzero weights (bound d + '
            f'3n + 6k = {r["weight_bound"]:,}), width {r["max_width"]:,} '
            f'(bound {r["width_bound"]:,})')
  else:
    size = (f'parameters {r["params"]:,} = 2n + d = {r["two_n_plus_d"]:,}, '
            f'smallest diagonal {r["min_diagonal"]:.3g}')
  print(f'{r["n"]} {_DATASET.value} images, labels={_LABELS.value}: training '
        f'accuracy {r["train_accuracy"]:.4f}, max |residual| '
        f'{r["max_abs_residual"]:.3g}, {size}, built in '
        f'{r["build_seconds"]:.1f}s -> {out}/result.json')


if __name__ == '__main__':
  cli.run(main)
