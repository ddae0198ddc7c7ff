r"""float32 against mixed bfloat16 on this machine: the same run twice, side by side.

  python benchmarks/precision.py            # AlexNet, true labels, 10 epochs
  python benchmarks/precision.py --row=flags/table1/inception.flags \
      --train_size=5000 --epochs=5

Runs `zhang2017.train` with the row's flags, --seed=0, a seeded training
subset (--train_size) and --epochs, once in float32 and once with
--mixed_precision (bfloat16 compute, float32 weights), on the TensorFlow
backend, each in its own process. Prints per epoch the loss, the
inference-mode training accuracy, the test accuracy and the seconds of both,
then the largest gap in each. The two result.json files (full provenance) stay
in --output_dir; README "Decisions" cites them for the precision of the CPU
conv runs.
"""

import csv
import os
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FLAGFILE = flags.DEFINE_string(
    'row', os.path.join(ROOT, 'flags/table1/alexnet.flags'),
    'The row to run (a flagfile of flags/).')
_TRAIN_SIZE = flags.DEFINE_integer('train_size', 10000,
                                   'Training images (seeded subset).',
                                   lower_bound=128)
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Epochs of each run.',
                               lower_bound=1)
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', os.path.join(ROOT, 'results/decisions/precision'),
    'Where the two run folders go (float32/, mixed_bfloat16/).')


def _run(name, extra):
  out = os.path.join(_OUTPUT_DIR.value, name)
  cmd = [sys.executable, '-m', 'zhang2017.train',
         f'--flagfile={_FLAGFILE.value}', '--seed=0',
         f'--train_size={_TRAIN_SIZE.value}', f'--epochs={_EPOCHS.value}',
         f'--output_dir={out}', *extra]
  print(' '.join(cmd[1:]), flush=True)
  env = {**os.environ, 'KERAS_BACKEND': 'tensorflow'}
  subprocess.run(cmd, check=True, cwd=ROOT, env=env)
  with open(os.path.join(out, 'history.csv')) as f:
    return list(csv.DictReader(f))


def main(argv):
  del argv
  a = _run('float32', [])
  b = _run('mixed_bfloat16', ['--mixed_precision'])
  cols = ('train_loss', 'train_accuracy', 'test_accuracy', 'seconds')
  print('epoch | ' + ' | '.join(f'{c} fp32 / bf16' for c in cols))
  gaps = dict.fromkeys(cols[:3], 0.0)
  for ra, rb in zip(a, b):
    print(f'{ra["epoch"]:>5} | ' + ' | '.join(
        f'{float(ra[c]):.4f} / {float(rb[c]):.4f}' for c in cols))
    for c in gaps:
      gaps[c] = max(gaps[c], abs(float(ra[c]) - float(rb[c])))
  print('largest gap: ' + ', '.join(f'{c} {v:.4f}' for c, v in gaps.items()))
  ta = sum(float(r['seconds']) for r in a)
  tb = sum(float(r['seconds']) for r in b)
  print(f'seconds: float32 {ta:.0f}, mixed_bfloat16 {tb:.0f} '
        f'({ta / tb:.2f}x)')


if __name__ == '__main__':
  app.run(main)
