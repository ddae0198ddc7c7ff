"""Per-example records on a synthetic run whose evaluations are known."""

import os

from absl.testing import absltest
import numpy as np

from zhang2017.training import memorization
from zhang2017.errors import UserError

# Correctness of six examples at four per-epoch evaluations (rows: epochs).
CORRECT = np.array([
    # ex0 ex1 ex2 ex3 ex4 ex5
    [1, 0, 1, 1, 0, 1],  # epoch 1
    [1, 0, 0, 0, 0, 1],  # epoch 2
    [1, 1, 1, 1, 0, 0],  # epoch 3
    [1, 1, 1, 0, 0, 1],  # epoch 4
], bool)
# By hand: ex0 right throughout (fitted from epoch 1); ex1 right from epoch 3;
# ex2 forgotten at 2, right from 3; ex3 forgotten at 2 and 4, wrong at the
# end (0); ex4 never right; ex5 forgotten at 3, right again at 4.
FIRST_FITTED = [1, 3, 3, 0, 0, 4]
FORGETTING = [0, 0, 1, 2, 0, 1]
CHANGED = np.array([0, 0, 1, 1, 1, 0], bool)


def _run(epochs, record=None):
  record = record or memorization.Record(4, CHANGED)
  for e in epochs:
    record.update(CORRECT[e], np.arange(6, dtype=np.float32) - 2.5)
  return record


class RecordTest(absltest.TestCase):

  def test_hand_computed_arrays(self):
    a = _run(range(4)).arrays()
    np.testing.assert_array_equal(a['first_fitted_epoch'], FIRST_FITTED)
    np.testing.assert_array_equal(a['forgetting_events'], FORGETTING)
    np.testing.assert_array_equal(a['label_changed'], [0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(a['margin'], [-2.5, -1.5, -0.5, 0.5, 1.5,
                                                2.5])
    self.assertEqual(int(a['evaluations']), 4)
    self.assertNotIn('index', a)  # Entry i is training example i.
    for k in ('first_fitted_epoch', 'forgetting_events', 'label_changed',
              'evaluations'):
      self.assertEqual(a[k].dtype, np.uint8, k)
    self.assertEqual(a['margin'].dtype, np.float16)

  def test_counts_widen_with_the_epoch_limit_and_a_sample_has_its_index(self):
    r = memorization.Record(300, index=np.array([7, 9]))
    r.update([True, False], [1.0, -1.0])
    a = r.arrays()
    self.assertEqual(a['first_fitted_epoch'].dtype, np.uint16)
    np.testing.assert_array_equal(a['index'], [7, 9])
    self.assertEqual(a['index'].dtype, np.uint32)
    self.assertNotIn('label_changed', a)  # Not known: not guessed.

  def test_resumed_from_its_state_equals_uninterrupted(self):
    half = _run(range(2))
    meta = {'history': [{}, {}], 'arrays': half.state()}
    resumed = _run(range(2, 4), memorization.resume(meta, 4, CHANGED))
    whole = _run(range(4)).arrays()
    for k, v in resumed.arrays().items():
      np.testing.assert_array_equal(v, whole[k], k)
      self.assertEqual(v.dtype, whole[k].dtype, k)

  def test_resume_without_a_record_or_with_a_wrong_one(self):
    self.assertIsNotNone(memorization.resume(None, 4))
    # A checkpoint from before records existed: its epochs are lost.
    self.assertIsNone(memorization.resume({'history': [{}], 'arrays': {}}, 4))
    meta = {'history': [{}, {}, {}], 'arrays': _run(range(2)).state()}
    with self.assertRaisesRegex(UserError, '2 evaluations for 3 epochs'):
      memorization.resume(meta, 4)

  def test_save_and_load(self):
    path = os.path.join(self.create_tempdir().full_path, memorization.FILE)
    _run(range(4)).save(path)
    a = memorization.load(path)
    np.testing.assert_array_equal(a['first_fitted_epoch'], FIRST_FITTED)
    self.assertCountEqual(a, ['first_fitted_epoch', 'forgetting_events',
                              'label_changed', 'margin', 'evaluations'])
    self.assertEqual(os.listdir(os.path.dirname(path)), [memorization.FILE])

  def test_margin_is_the_given_logit_minus_the_largest_other(self):
    logits = np.array([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
    np.testing.assert_allclose(memorization.margin(logits, [1, 2, 0]),
                               [1.0, -5.0, 0.0])

  def test_margins_beyond_float16_are_inf_without_a_warning(self):
    record = memorization.Record(4, CHANGED)
    with np.errstate(all='raise'):  # A warning would raise here.
      record.update(CORRECT[0], np.array([1e6, -1e6, 3, 0, 0, 0], np.float32))
    np.testing.assert_array_equal(record.margin[:3], [np.inf, -np.inf, 3])


if __name__ == '__main__':
  absltest.main()
