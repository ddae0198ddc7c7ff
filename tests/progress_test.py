"""The CPU cost note: the measured rates of benchmarks/cpu_speed.py."""

from unittest import mock

from absl.testing import absltest

from zhang2017.training import config as config_lib
from zhang2017.training import progress


class CpuNoteTest(absltest.TestCase):

  def note(self, **kw):
    lines = []
    with mock.patch.object(progress.results, 'device_description',
                           return_value='cpu: test'):
      progress.cpu_warning(config_lib.Config(**kw), 49_920, 60_000,
                           lines.append)
    return lines

  def test_full_size_inception_in_bfloat16(self):
    # 49,920 / 296 + 60,000 / 966 = 230.8 s: the queue's quiet epochs took
    # 242-327 s before the tf.data fix (issue 25).
    (line,) = self.note(model='inception_small', mixed_precision=True)
    self.assertIn('trains at roughly 296 images/s and evaluates at 966', line)
    self.assertIn('about 3:51 per epoch', line)
    self.assertIn('up to 6:24:36 for 100 epochs', line)

  def test_float32_is_slower_and_nobn_costs_the_same(self):
    (line,) = self.note(model='inception_small_nobn')
    self.assertIn('roughly 212 images/s', line)

  def test_no_note_for_the_mlp_or_on_a_gpu(self):
    self.assertEqual(self.note(model='mlp_1x512'), [])
    lines = []
    with mock.patch.object(progress.results, 'device_description',
                           return_value='gpu: H200'):
      progress.cpu_warning(config_lib.Config(), 49_920, 60_000, lines.append)
    self.assertEqual(lines, [])


if __name__ == '__main__':
  absltest.main()
