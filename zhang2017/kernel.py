r"""Section 5: minimum-norm kernel interpolation on a whole training set.

  python -m zhang2017.kernel --dataset=mnist --kernel=gaussian --gamma=10
  python -m zhang2017.kernel --dataset=cifar10 --gamma_rule=median
  python -m zhang2017.kernel --dataset=cifar10 --gamma_rule=median \
      --preprocessing=random_features --filters=2048

Solves K alpha = y (one-hot y; K + l2 I with --l2) on all training points
with a tiled Cholesky (see theory/kernel_lib.py), then prints test error,
the RKHS norm of the interpolant, solve time and peak memory, and writes
result.json (default results/theory/kernel-<dataset>-<kernel>-[wavelet-|
rf<filters>-]g<gamma>, or -median, then -l2<l2>, -f64 with
--precision=float64, then -n<train_size> for a subset). The Cholesky's
achieved GFLOP/s is printed and recorded. Pixels are scaled to [0, 1];
k(x, x') = exp(-gamma |x - x'|^2 / d). With --gamma_rule=median, gamma is
d / median |x_i - x_j|^2 over 20,000 seeded pairs of training images
(`kernel_lib.median_gamma`): a rule stated before any test error is seen.
Where the float32 Cholesky finds that matrix not positive definite (wide
Gaussians on near-duplicate images), the median rule keeps gamma and adds
the smallest ridge in kernel_lib.JITTERS with which the factorization
succeeds; the result records it as `jitter`.

Random features are summed 1,024 filters at a time into dot products
(gram.py); every --checkpoint_minutes those sums go to gram.npz in the run
folder, and the same command started again resumes from them (32,000
filters take hours on 2 cores); it is also saved after the last chunk, so
a failed solve restarts from the sums, and deleted once result.json is
written. wall_seconds adds up the sittings; provenance.sitting_log names
each one's commit, device and filters.
"""

import functools
import os
import time

import numpy as np

from zhang2017 import cli

cli.quiet_import_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from zhang2017.training import config as config_lib
from zhang2017.data import datasets as data
from zhang2017.theory import gram as gram_lib
from zhang2017.theory import kernel_lib
from zhang2017.training import results
from zhang2017.theory import wavelets
from zhang2017.errors import UserError

PAPER = {'mnist': 'test error 1.2%, norm about 220 (kernel unstated)',
         'cifar10': 'Gaussian kernel on pixels: test error 46%',
         'wavelet': 'Gabor wavelets: test error 0.6%, norm about 390',
         'random_features': '32,000 random filters: test error 17% (15% '
                            'with l2)'}
_DATASET = flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'cifar10'],
                             'Dataset (all training images).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Default $ZHANG2017_DATA_DIR.')
_KERNEL = flags.DEFINE_enum('kernel', 'gaussian', list(kernel_lib.KERNELS),
                            'Kernel.')
# The kernel matrix is float32 (by default): gamma / d and the ridge must
# stay finite there (float32 ends near 3.4e38).
MAX_FLOAT_FLAG = 1e30
_GAMMA = flags.DEFINE_float('gamma', 10.0, 'exp(-gamma |x - x\'|^2 / d).',
                            lower_bound=0.0, upper_bound=MAX_FLOAT_FLAG)
_PREPROCESSING = flags.DEFINE_enum(
    'preprocessing', 'pixels', ['pixels', 'wavelet', 'random_features'],
    'pixels: raw pixels in [0, 1]; wavelet: first-order Gabor (Morlet) '
    'scattering features, J=2, L=8 (wavelets.py; MNIST only); '
    'random_features: --filters random convolutional filters, soft '
    'threshold, quadrant pooling (random_features.py; CIFAR-10 only).')
_FILTERS = flags.DEFINE_integer(
    'filters', 32_000, 'Random filters for --preprocessing=random_features '
    '(the paper: 32,000); 8 features each, computed 1,024 filters at a time.',
    lower_bound=1)
_GAMMA_RULE = flags.DEFINE_enum(
    'gamma_rule', 'fixed', ['fixed', 'median'],
    'fixed: --gamma; median: gamma from the median pairwise distance of the '
    'training images (ignores --gamma).')
_L2 = flags.DEFINE_float('l2', 0.0, 'Ridge term added to the diagonal.',
                         lower_bound=0.0, upper_bound=MAX_FLOAT_FLAG)
_TRAIN_SIZE = flags.DEFINE_integer('train_size', None, 'Seeded subset.',
                                   lower_bound=1)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the subset.', lower_bound=0,
                             upper_bound=config_lib.MAX_SEED)
_TILE = flags.DEFINE_integer('tile', kernel_lib.TILE, 'Tile size.',
                             lower_bound=64)
_PRECISION = flags.DEFINE_enum(
    'precision', 'float32', ['float32', 'float64'],
    'The kernel matrix and its Cholesky: float32 (60,000 MNIST images: '
    '7.4 GB of tiles) or float64 (14.9 GB, half the speed; positive definite where '
    'float32 is not). Pixels and wavelets only.')
_CHECKPOINT_MINUTES = flags.DEFINE_float(
    'checkpoint_minutes', 20.0, 'Random features: save the dot products '
    'summed so far (gram.npz in the run folder, about 8 GB for CIFAR-10) '
    'at most this often; the same command resumes from it.', lower_bound=0.0)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Run folder.')
GRAM_CHECKPOINT = 'gram.npz'


def check_flags(dataset, preprocessing, precision):
  """Raises UserError for flags that do not go together."""
  if preprocessing == 'wavelet' and dataset != 'mnist':
    raise UserError('--preprocessing=wavelet is for grey images; use it '
                    'with --dataset=mnist')
  if preprocessing == 'random_features' and precision != 'float32':
    raise UserError('--preprocessing=random_features computes in float32; '
                    'drop --precision')
  if preprocessing == 'random_features' and dataset != 'cifar10':
    raise UserError('--preprocessing=random_features is for colour images; '
                    'use it with --dataset=cifar10')


def run(dataset, data_dir, kernel, gamma, l2, train_size, seed, tile,
        log=print, gamma_rule='fixed', preprocessing='pixels', filters=None,
        precision='float32', checkpoint=None, checkpoint_seconds=1200.0):
  """Loads the data, solves, evaluates; returns the result dict.

  `checkpoint` (random features only): a path where the dot products summed
  so far are saved every `checkpoint_seconds` and resumed from.
  """
  check_flags(dataset, preprocessing, precision)
  t0 = time.time()
  ds = data.subset(data.load(dataset, data_dir), train_size, seed)
  earlier, sitting_log = 0.0, []
  if preprocessing == 'random_features':
    key = {'dataset': ds.source, 'train_size': train_size, 'seed': seed,
           'filters': filters, 'tile': tile}
    gram, earlier, sitting_log = gram_lib.random_feature_gram(
        ds.x_train / np.float32(255), ds.x_test / np.float32(255), filters,
        seed, tile, log, checkpoint=checkpoint, key=key,
        checkpoint_seconds=checkpoint_seconds)
    log(f'random features: {gram.dim} per image')
    median = lambda: gram.median_gamma(seed)
    solve = lambda g, ridge: kernel_lib.interpolate_gram(
        gram, ds.y_train, ds.y_test, ds.num_classes, kernel, g, ridge, log)
  else:
    if preprocessing == 'wavelet':
      flat = lambda x: wavelets.transform(x / 255.0)
    else:
      flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255
    x_train, x_test = flat(ds.x_train), flat(ds.x_test)
    log(f'{preprocessing}: {x_train.shape[1]} features per image')
    median = lambda: kernel_lib.median_gamma(x_train, seed)
    solve = lambda g, ridge: kernel_lib.interpolate(
        x_train, ds.y_train, x_test, ds.y_test, ds.num_classes, kernel, g,
        ridge, tile, log, np.dtype(precision))
  if gamma_rule == 'median':
    gamma = median()
    log(f'median rule: gamma = {gamma:.4g}')
  jitter = 0.0
  for larger in kernel_lib.JITTERS + (None,):
    try:
      r = solve(gamma, l2 + jitter)
      break
    except np.linalg.LinAlgError as e:
      if gamma_rule != 'median' or larger is None:
        raise
      jitter = larger
      log(f'{e}; median rule: gamma kept, ridge {jitter:g} I added')
  log(f'cholesky of order {len(ds.y_train)}: {r["cholesky_seconds"]:.1f}s, '
      f'{r["cholesky_gflops"]:.0f} GFLOP/s')
  r.update({
      'n': len(ds.y_train), 'test_accuracy':
          1 - r['test_error'],
      'paper': PAPER[preprocessing if preprocessing != 'pixels' else dataset],
      'gamma': gamma, 'gamma_rule': gamma_rule, 'jitter': jitter,
      'preprocessing': preprocessing,
      'summary_keys': ['test_error', 'rkhs_norm', 'preprocessing',
                       'filters', 'jitter',
                       'gamma_rule', 'gamma',
                       'solve_seconds', 'total_seconds', 'peak_memory_gb',
                       'n'],
      'flags': {'dataset': dataset, 'kernel': kernel, 'gamma': gamma,
                'gamma_rule': gamma_rule, 'preprocessing': preprocessing,
                'l2': l2, 'train_size': train_size, 'filters': filters,
                'seed': seed, 'tile': tile, 'precision': precision},
      'provenance': results.provenance(
          ds.source, earlier + time.time() - t0,
          f'{precision} matrix, float64 solves'),
  })
  r['status'] = kernel_lib.status(r)
  if sitting_log:  # Random features: perhaps several sittings.
    p = r['provenance']  # Its wall_seconds adds them all up.
    p['sitting_log'] = sitting_log
    p['git_commits'] = list(dict.fromkeys(
        s['git_commit'] for s in sitting_log if s['git_commit']))
    p['sittings'] = len(sitting_log)
  if preprocessing == 'random_features':
    r['filters'] = filters
  return r


def main(argv):
  results.git_commit()  # Record the code as it is at the start.
  del argv
  out = _OUTPUT_DIR.value or os.path.join(
      results.ROOT, 'results', 'theory',
      f'kernel-{_DATASET.value}-{_KERNEL.value}-' +
      {'pixels': '', 'wavelet': 'wavelet-',
       'random_features': f'rf{_FILTERS.value}-'}[_PREPROCESSING.value] +
      ('median' if _GAMMA_RULE.value == 'median' else f'g{_GAMMA.value:g}') +
      (f'-l2{_L2.value:g}' if _L2.value else '') +
      ('-f64' if _PRECISION.value == 'float64' else '') +
      (f'-n{_TRAIN_SIZE.value}' if _TRAIN_SIZE.value else ''))
  check_flags(_DATASET.value, _PREPROCESSING.value, _PRECISION.value)
  log = functools.partial(print, flush=True)  # Progress reaches a log file.
  log(f'run folder: {out}')
  cli.check_output_folder('output_dir', out)  # Before hours of work.
  checkpoint = os.path.join(out, GRAM_CHECKPOINT)
  try:
    r = run(_DATASET.value, _DATA_DIR.value, _KERNEL.value, _GAMMA.value,
            _L2.value, _TRAIN_SIZE.value, _SEED.value, _TILE.value,
            gamma_rule=_GAMMA_RULE.value, preprocessing=_PREPROCESSING.value,
            filters=_FILTERS.value, log=log, precision=_PRECISION.value,
            checkpoint=checkpoint, checkpoint_seconds=60 * _CHECKPOINT_MINUTES.value)
  except np.linalg.LinAlgError as e:  # Its message names the flag to change.
    raise UserError(str(e)) from e
  os.makedirs(out, exist_ok=True)
  results.write_json(os.path.join(out, results.RESULT), r)
  if os.path.exists(checkpoint):
    os.remove(checkpoint)  # result.json supersedes it.
  print(f'{r["n"]} {_DATASET.value} points, gamma {r["gamma"]:.4g} '
        f'({r["gamma_rule"]}): test error '
        f'{100 * r["test_error"]:.2f}%, {r["status"]}, RKHS norm '
        f'{r["rkhs_norm"]:.1f}, '
        f'kernel {r["kernel_seconds"]:.0f}s, cholesky '
        f'{r["cholesky_seconds"]:.0f}s ({r["cholesky_gflops"]:.0f} GFLOP/s), '
        f'solve {r["solve_seconds"]:.0f}s, '
        f'total {r["total_seconds"]:.0f}s, peak memory '
        f'{r["peak_memory_gb"]:.1f} GB -> {out}/result.json')


if __name__ == '__main__':
  cli.run(main)
