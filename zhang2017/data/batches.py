"""The batch protocol (the same on every backend and on resume):

* Training: each epoch takes the seeded permutation the loop in `train_lib.py`
  hands it and runs n // batch_size steps of exactly `batch_size` examples;
  the n % batch_size examples at the end of the permutation sit that epoch
  out (the next epoch's permutation is a new one, so no example is left out
  for long). Every step has one shape, so a compiled backend builds one
  training program, and BatchNorm never sees a small last batch.
* Evaluation: both splits are cut into batches of exactly `eval_batch_size`,
  the last one padded with copies of the split's last image (inference mode
  has no batch statistics, so padding changes nothing) and the padding's
  outputs dropped: one evaluation program for train and test.

Each epoch returns the mean mini-batch loss and the running accuracy: the
fraction of the epoch's training examples classified correctly in training
mode, on the samples the step saw (cropped/augmented when those are on).
"""

import numpy as np


def epoch_batches(perm, batch_size):
  """An epoch's training batches: (steps, batch_size) indices, remainder out."""
  steps = len(perm) // batch_size
  return np.asarray(perm[:steps * batch_size], np.int32).reshape(
      steps, batch_size)


def default_steps_per_call():
  """1 on a CPU (XLA:CPU ran small Inception's step 17x slower inside a
  `lax.scan` than alone: 75 s vs 4.3 s per step here), else a whole epoch."""
  import jax  # pylint: disable=g-import-not-at-top
  return 1 if jax.default_backend() == 'cpu' else 0


def chunk_steps(steps, steps_per_call):
  """Steps per compiled call: the largest divisor of `steps` not above the
  request (0: the whole epoch), so every call has one shape."""
  if steps_per_call is None:
    steps_per_call = default_steps_per_call()
  if not steps_per_call or steps_per_call >= steps:
    return steps
  return max(k for k in range(1, steps_per_call + 1) if steps % k == 0)


def pad_to_batches(x, batch_size):
  """`x` padded with copies of its last row to a multiple of `batch_size`."""
  pad = -len(x) % batch_size
  if not pad:
    return x
  return np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
