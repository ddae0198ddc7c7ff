"""A run's state between epochs, and the fingerprint of its final weights.

`checkpoint.npz` in the run folder holds every model and optimizer variable,
a JSON meta record (the run key and the history so far) and the run's other
state (the per-example records of `memorization.py`) in one file; it is
written to a temporary file and renamed, so a kill at any moment leaves the
previous epoch's checkpoint intact, all of it consistent.
"""

import hashlib
import json
import os

import keras
import numpy as np

from zhang2017.training import results
from zhang2017.errors import UserError

CHECKPOINT = 'checkpoint.npz'


def weights_fingerprint(model):
  """sha256 (16 hex digits) of every model variable's final bytes."""
  h = hashlib.sha256()
  for v in model.variables:
    h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v.value)).tobytes())
  return h.hexdigest()[:16]


def save(path, model, optimizer, meta, extra=None):
  """Writes the state atomically; `extra`: further named arrays of it."""
  arrays = {f'v{i}': keras.ops.convert_to_numpy(v.value)
            for i, v in enumerate(model.variables)}
  arrays.update({f'o{i}': keras.ops.convert_to_numpy(v.value)
                 for i, v in enumerate(optimizer.variables)})
  arrays.update({f'a_{k}': v for k, v in (extra or {}).items()})
  results.atomic_savez(path, meta=np.array(json.dumps(meta)), **arrays)


def load(path, model, optimizer, run_key):
  """Restores state; returns the saved meta, or None if there is none.

  The meta's 'arrays' holds the `extra` arrays that `save` was given (empty
  for a checkpoint written without them).
  """
  if not os.path.exists(path):
    return None
  try:
    z = np.load(path)
    meta = json.loads(str(z['meta']))
  except (OSError, ValueError, KeyError, EOFError) as e:
    raise UserError(f'{path} is damaged ({e}); delete it to restart the run '
                    'from scratch') from e
  if meta['run_key'] != run_key:
    raise UserError(f'{os.path.dirname(path)} holds a run with other flags; '
                    'use another --output_dir or delete that folder')
  if not optimizer.built:
    optimizer.build(model.trainable_variables)
  for i, v in enumerate(model.variables):
    v.assign(z[f'v{i}'])
  for i, v in enumerate(optimizer.variables):
    v.assign(z[f'o{i}'])
  meta['arrays'] = {k[2:]: z[k] for k in z.files if k.startswith('a_')}
  return meta
