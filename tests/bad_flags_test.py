"""Bad input, systematically: every numeric and path flag of every binary.

flag_probe.py runs each binary in-process, one process per binary, on its
flags' bad values (integers at 0, -1 and 10**20; floats also at 1e300, nan
and inf; paths missing, unreadable and of the wrong kind). Each case must
either run normally or exit with status 2 and one line, `error: ...`,
naming the flag, with nothing written; never a traceback, never a hang.
"""

import json
import os
import subprocess
import sys

from absl.testing import absltest

import testutil

PROBE = os.path.join(testutil.ROOT, 'tests', 'flag_probe.py')
# Flags each binary's case list must include: the enumeration found them.
SOME_FLAGS = {
    'train': {'seed', 'batch_size', 'learning_rate', 'epochs', 'data_dir',
              'output_dir', 'flagfile'},
    'sweep': {'seeds', 'parallel', 'time_limit', 'results_dir', 'flags_dir',
              'pack_to', 'compilation_cache', 'flagfile'},
    'report': {'results_dir', 'flags_dir', 'flagfile'},
    'expressivity': {'seed', 'depth', 'train_size', 'corrupt_prob',
                     'data_dir', 'output_dir', 'flagfile'},
    'kernel': {'seed', 'gamma', 'l2', 'tile', 'filters', 'data_dir',
               'output_dir', 'flagfile'},
}
# String flags that are not paths; any other string flag must be a path
# (named *_dir, *_cache or *_to) so that the probe tries it.
# (--dataset's folder:PATH form: its bad folders are in plugins_data_test.py.)
NOT_PATHS = {'experiment', 'slurm_partition', 'slurm_mem', 'dataset'}
NOT_PATHS |= {'model', 'model_kwargs'}  # A spec and a JSON object.
# The binaries that print `run folder: <dir>` first.
RUN_BINARIES = {'train', 'expressivity', 'kernel'}


def probe(binary, tmp):
  """Runs flag_probe.py on zhang2017.<binary>; returns its report."""
  path = os.path.join(tmp, f'{binary}.json')
  env = {**os.environ, 'PYTHONPATH': testutil.ROOT, 'KERAS_BACKEND':
         'tensorflow', 'TF_CPP_MIN_LOG_LEVEL': '3'}
  p = subprocess.run([sys.executable, PROBE, f'zhang2017.{binary}', path],
                     env=env, capture_output=True, text=True, timeout=600,
                     check=False)
  if p.returncode:
    raise AssertionError(f'flag_probe.py failed:\n{p.stderr[-3000:]}')
  with open(path) as f:
    return json.load(f)


def problems(binary, case):
  """What is wrong with one case's ending (an empty list: nothing)."""
  what = f'--{case["flag"]}={case["value"]} ({case["kind"]})'
  lines = [l for l in case['stderr'].splitlines() if l.strip()]
  if case['outcome'] not in ('accepted', 'exit 2') or (
      'Traceback' in case['stderr']):
    return [f'{what}: {case["outcome"]}:\n{case["stderr"][-1200:]}']
  found = []
  if case['outcome'] == 'accepted':
    first = (case['stdout'].splitlines() or [''])[0]
    if binary in RUN_BINARIES and not first.startswith('run folder: '):
      found.append(f'{what}: first line {first!r}, not the run folder')
    return found
  if case['kind'] == 'baseline':
    found.append(f'{what}: the valid command line failed: {lines}')
  elif len(lines) != 1 or not lines[0].startswith('error: '):
    found.append(f'{what}: not one `error: ` line: {lines}')
  elif f'--{case["flag"]}' not in lines[0]:
    found.append(f'{what}: the line does not name the flag: {lines[0]}')
  if case['written']:
    found.append(f'{what}: exit 2 but wrote {case["written"]}')
  return found


class BadFlagsTest(absltest.TestCase):

  def check(self, binary):
    report = probe(binary, self.create_tempdir().full_path)
    cases = report['cases']
    self.assertEqual(cases[0]['kind'], 'baseline')
    self.assertContainsSubset(SOME_FLAGS[binary], {c['flag'] for c in cases})
    self.assertContainsSubset(report['strings'], NOT_PATHS)
    self.assertFalse(report['shared_changed'])  # The data, the flagfiles.
    found = [p for c in cases for p in problems(binary, c)]
    if found:
      self.fail(f'{len(found)} of {len(cases)} cases:\n' + '\n'.join(found))

  def test_problems_sees_each_bad_ending(self):
    ok = {'flag': 'seed', 'value': '-1', 'kind': 'int', 'outcome': 'exit 2',
          'stdout': '', 'stderr': 'error: --seed=-1 is out of range\n',
          'written': []}
    self.assertEmpty(problems('train', ok))
    for change in ({'outcome': 'traceback'}, {'outcome': 'hang'},
                   {'stderr': 'error: out of range\n'},
                   {'stderr': 'warning: slow\nerror: --seed=-1 bad\n'},
                   {'written': ['out']},
                   {'outcome': 'accepted', 'stdout': 'epoch 1\n'},
                   {'kind': 'baseline'}):
      with self.subTest(str(change)):
        self.assertLen(problems('train', {**ok, **change}), 1)

  def test_train(self):
    self.check('train')

  def test_sweep(self):
    self.check('sweep')

  def test_report(self):
    self.check('report')

  def test_expressivity(self):
    self.check('expressivity')

  def test_kernel(self):
    self.check('kernel')


if __name__ == '__main__':
  absltest.main()
