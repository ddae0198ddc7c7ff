"""Per-example memorization records: when each training example is fitted
and how often it is forgotten, written to `examples.npz` in the run folder.

After every epoch the training loop evaluates the (corrupted) training set in
inference mode; `Record.update` takes that evaluation's correctness mask and
margins. At the end of a run `examples.npz` holds, over the evaluated
training examples in their stored order (README "Learning order and
forgetting"):

* `first_fitted_epoch` (unsigned): the first epoch after which the example
  is predicted correctly at every later evaluation (Arpit et al. 2017's
  learning order); 0 if it is wrong at the last evaluation.
* `forgetting_events` (unsigned): correct-to-wrong transitions between
  consecutive evaluations (Toneva et al. 2019, on per-epoch evaluations
  rather than mini-batch presentations).
* `label_changed` (uint8, 0/1): the corruption mask; absent where it is not
  known (a tfds ImageNet stream corrupts labels inside the stream).
* `margin` (float16): logit of the given label minus the largest other logit
  at the last evaluation; +-inf beyond float16's 65,504 (a diverged run).
* `evaluations` (scalar): the number of evaluations (epochs) recorded.
* `index` (uint32): only where a fixed sample of the training set is
  evaluated (ImageNet): entry i is training example `index[i]`. Without it
  entry i is training example i.

Between epochs the state travels inside the checkpoint (`state`, `resume`),
written in the same atomic file as the weights, so a run killed and resumed
writes the same record as an uninterrupted one.
"""

import numpy as np

from zhang2017.training import results
from zhang2017.errors import UserError

FILE = results.EXAMPLES
_PREFIX = 'examples_'  # Of this module's arrays inside checkpoint.npz.


def margin(logits, labels):
  """Logit of the given label minus the largest other logit, per example."""
  logits = np.asarray(logits, np.float32)
  rows = np.arange(len(labels))
  given = logits[rows, labels]
  others = logits.copy()
  others[rows, labels] = -np.inf
  return given - others.max(axis=1)


class Record:
  """Per-example bookkeeping over consecutive evaluations of the same
  examples.

  Args:
    max_epochs: the run's epoch limit; sets the unsigned dtype of the counts.
    label_changed: boolean corruption mask of the evaluated examples, or None.
    index: training-set positions of the evaluated examples, or None when
      entry i is example i.
  """

  def __init__(self, max_epochs, label_changed=None, index=None):
    self.dtype = np.min_scalar_type(max(int(max_epochs), 1))
    self.label_changed, self.index = label_changed, index
    self.evaluations = 0
    # Per example: correct at the last evaluation; the last evaluation
    # (1-based) at which it was wrong, 0 if none; forgetting events; margin.
    self.correct = self.last_wrong = self.forgetting = self.margin = None

  def update(self, correct, margins):
    """Adds one evaluation: boolean correctness and margins per example."""
    correct = np.asarray(correct, bool)
    if self.correct is None:
      self.correct = np.zeros(len(correct), bool)
      self.last_wrong = np.zeros(len(correct), self.dtype)
      self.forgetting = np.zeros(len(correct), self.dtype)
    self.evaluations += 1
    self.forgetting += (self.correct & ~correct).astype(self.dtype)
    self.last_wrong[~correct] = self.evaluations
    self.correct = correct
    with np.errstate(over='ignore'):  # Beyond float16 (a diverged run): inf.
      self.margin = np.asarray(margins, np.float16)

  def first_fitted_epoch(self):
    """The first epoch from which each example stays correct; 0: wrong at
    the last evaluation."""
    return np.where(self.correct, self.last_wrong + 1, 0).astype(self.dtype)

  def arrays(self):
    """The contents of examples.npz."""
    out = {'first_fitted_epoch': self.first_fitted_epoch(),
           'forgetting_events': self.forgetting, 'margin': self.margin,
           'evaluations': np.array(self.evaluations, self.dtype)}
    if self.label_changed is not None:
      out['label_changed'] = np.asarray(self.label_changed, np.uint8)
    if self.index is not None:
      out['index'] = np.asarray(self.index, np.uint32)
    return out

  def save(self, path):
    """Writes examples.npz atomically (compressed)."""
    results.atomic_savez(path, compressed=True, **self.arrays())

  def state(self):
    """The arrays the checkpoint carries (none before the first epoch)."""
    if self.correct is None:
      return {}
    return {_PREFIX + k: v for k, v in (
        ('evaluations', np.array(self.evaluations)), ('correct', self.correct),
        ('last_wrong', self.last_wrong), ('forgetting', self.forgetting),
        ('margin', self.margin))}

  def restore(self, arrays, epochs):
    """Continues from a checkpoint's `state()` after `epochs` epochs.

    Raises:
      UserError: the state does not belong to those epochs.
    """
    n = int(arrays[_PREFIX + 'evaluations'])
    if n != epochs:
      raise UserError(f'the checkpoint records {n} evaluations for {epochs} '
                      'epochs; delete it to restart the run')
    self.evaluations = n
    self.correct = np.asarray(arrays[_PREFIX + 'correct'], bool)
    self.last_wrong = arrays[_PREFIX + 'last_wrong'].astype(self.dtype)
    self.forgetting = arrays[_PREFIX + 'forgetting'].astype(self.dtype)
    self.margin = arrays[_PREFIX + 'margin'].astype(np.float16)


def resume(meta, max_epochs, label_changed=None, index=None):
  """The run's Record: fresh, or restored from a checkpoint's meta (its
  'arrays'); None when the checkpoint holds epochs but no record (written
  before records existed), since those epochs cannot be recovered."""
  record = Record(max_epochs, label_changed, index)
  if meta and meta['history']:
    if _PREFIX + 'evaluations' not in meta.get('arrays', {}):
      return None
    record.restore(meta['arrays'], len(meta['history']))
  return record


def load(path):
  """examples.npz as a dict of arrays."""
  with np.load(path) as z:
    return {k: z[k] for k in z.files}
