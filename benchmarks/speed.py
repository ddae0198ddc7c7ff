r"""Training speed per model and wall time to fit random labels, side by side.

  KERAS_BACKEND=jax python benchmarks/speed.py --mixed_precision \
      --models=inception_small,alexnet_small,mlp_1x512 --fit_model=inception_small

Per model it prints: compile time (first epoch minus a steady one), seconds per
training epoch (50,000 CIFAR-10 images, batch 128), images per second, the
epoch's FLOPs (3x the forward pass, convolutions and dense layers only) and
the fraction of the FLOP floor reached at --peak_tflops. Then it trains
--fit_model on random labels through `train_lib.train_and_evaluate` (the real
run: evaluation every epoch included) and prints the wall time until 100%
training accuracy, beside the reference points measured on the same H200.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import keras
import numpy as np

from zhang2017.training import config as config_lib
from zhang2017.training import distribute
from zhang2017.models import paper_models as models
from zhang2017.training import results
from zhang2017.training import train_lib
from zhang2017.training import backends
from benchmarks.flops import forward_flops

_MODELS = flags.DEFINE_list('models', ['inception_small', 'alexnet_small',
                                       'mlp_1x512'], 'Models to time.')
_EPOCHS = flags.DEFINE_integer('epochs', 3, 'Timed epochs after the first.')
_FIT_MODEL = flags.DEFINE_string('fit_model', 'inception_small',
                                 'Model trained to fit random labels ("" skips).')
_FIT_EPOCHS = flags.DEFINE_integer('fit_epochs', 100, 'Epoch limit of the fit.')
_MIXED = flags.DEFINE_bool('mixed_precision', False, 'bfloat16 compute.')
_TRAIN_SIZE = flags.DEFINE_integer('train_size', None, 'Subset (CPU smoke).')
_TEST_SIZE = flags.DEFINE_integer('test_size', None, 'Subset (CPU smoke).')
_STEPS_PER_CALL = flags.DEFINE_integer(
    'steps_per_call', None, 'JAX: training steps per compiled call (0: an '
    'epoch; default: 1 on a CPU, an epoch on a GPU).')
_PEAK = flags.DEFINE_float('peak_tflops', 790.0,
                           'Device peak for the floor: bf16 matrix TFLOP/s '
                           '(790 measured on the H200 here).')
_FIT_OUTPUT_DIR = flags.DEFINE_string(
    'fit_output_dir', None, 'Keep the fit run here (e.g. its Table 1 run '
    'folder, so a sweep with the same flags reuses it); default: a temp dir.')
_EVAL_BATCH = flags.DEFINE_integer('eval_batch_size', 2500, 'Eval batch.')

# Measured on the same H200 (issue 4): (method, epochs, seconds, s/epoch).
REFERENCES = [
    ('PyTorch eager, bf16 autocast, channels-last', 49, 269, 5.0),
    ('Keras fit on JAX, mixed_bfloat16', 39, 177, 2.0),
]


def time_model(name, ds, precision_flag):
  """Compile time, s/epoch, img/s and FLOPs of one model's training epoch."""
  distribute.setup(0, precision_flag)
  model = models.build(name, ds.num_classes, ds.x_train.shape[1:])
  opt = keras.optimizers.SGD(0.01, momentum=0.9)
  trainer = backends.make(model, opt, ds, 128, _EVAL_BATCH.value,
                          steps_per_call=_STEPS_PER_CALL.value)
  n = len(ds.y_train)
  t0 = time.time()
  trainer.train_epoch(0, train_lib.epoch_order(0, 0, n))
  first = time.time() - t0
  times = []
  for e in range(1, _EPOCHS.value + 1):
    t0 = time.time()
    trainer.train_epoch(e, train_lib.epoch_order(0, e, n))
    times.append(time.time() - t0)
  t0 = time.time()
  trainer.evaluate('train')
  trainer.evaluate('test')
  eval_s = time.time() - t0
  epoch = float(np.median(times))
  flops = 3 * forward_flops(model) * (n // 128 * 128)  # Full batches.
  return {'model': name, 'compile_s': first - epoch, 'epoch_s': epoch,
          'img_s': n // 128 * 128 / epoch, 'eval_s': eval_s, 'epoch_tflop': flops / 1e12,
          'floor_fraction': flops / 1e12 / _PEAK.value / epoch}


def main(argv):
  del argv
  print(f'backend {keras.backend.backend()}, device '
        f'{results.device_description()}, mixed_precision '
        f'{_MIXED.value}, commit {results.git_commit()}')
  cfg = config_lib.Config(labels='random', train_size=_TRAIN_SIZE.value,
                          test_size=_TEST_SIZE.value)
  ds, _, _ = train_lib.prepare_data(cfg)
  print(f'{len(ds.y_train)} training images, random labels, batch 128, '
        f'steps per call {_STEPS_PER_CALL.value} (None: the default)\n')
  print(f'{"model":<18}{"compile s":>10}{"s/epoch":>9}{"img/s":>10}'
        f'{"eval s":>8}{"TFLOP/ep":>10}{"floor %":>9}')
  for name in [m for m in _MODELS.value if m]:
    r = time_model(name, ds, _MIXED.value)
    print(f'{r["model"]:<18}{r["compile_s"]:>10.1f}{r["epoch_s"]:>9.3f}'
          f'{r["img_s"]:>10.0f}{r["eval_s"]:>8.2f}{r["epoch_tflop"]:>10.1f}'
          f'{100 * r["floor_fraction"]:>9.2f}', flush=True)
  if not _FIT_MODEL.value:
    return
  with tempfile.TemporaryDirectory() as tmp:
    d = _FIT_OUTPUT_DIR.value or tmp
    fit_cfg = config_lib.Config(
        model=_FIT_MODEL.value, labels='random', epochs=_FIT_EPOCHS.value,
        mixed_precision=_MIXED.value, train_size=_TRAIN_SIZE.value,
        test_size=_TEST_SIZE.value, eval_batch_size=_EVAL_BATCH.value,
        steps_per_call=_STEPS_PER_CALL.value, output_dir=d)
    t0 = time.time()
    res = train_lib.train_and_evaluate(fit_cfg, log=print)
    wall = time.time() - t0
    hist = results.read_csv(os.path.join(d, results.HISTORY))
  secs = [float(h['seconds']) for h in hist]
  steady = float(np.median(secs[1:])) if len(secs) > 1 else secs[0]
  print(f'\nTime to fit random labels, {_FIT_MODEL.value} (train accuracy in '
        'inference mode reaches 100%; evaluation every epoch included):')
  print(f'{"method":<52}{"epochs":>7}{"wall s":>8}{"s/epoch":>9}')
  for method, ep, wall_s, per in REFERENCES:
    print(f'{method + " (reference)":<52}{ep:>7}{wall_s:>8.0f}{per:>9.2f}')
  ep = res['epochs_to_fit'] if res['epochs_to_fit'] else f'>{res["epochs"]}'
  print(f'{"zhang2017, " + keras.backend.backend() + " (this run)":<52}{ep:>7}{wall:>8.1f}'
        f'{steady:>9.2f}')
  print(f'status {res["status"]}, final train accuracy '
        f'{res["train_accuracy"]:.4f}, test {res["test_accuracy"]:.4f}, '
        f'first epoch {secs[0]:.1f}s (compilation included'
        + (f': about {secs[0] - steady:.1f}s of compilation)' if len(secs) > 1
           else ')'))


if __name__ == '__main__':
  app.run(main)
