"""The package's shape: no import cycles, files short enough to read at once,
one training loop."""

import ast
import glob
import os

from absl.testing import absltest

import testutil

PACKAGE = os.path.join(testutil.ROOT, 'zhang2017')
MAX_LINES = 300


def _imports(path):
  """The zhang2017 modules a file imports, at top level or in a function."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.ImportFrom) and node.module == 'zhang2017':
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
        'zhang2017.'):
      found.add(node.module.split('.')[1])
    elif isinstance(node, ast.Import):
      found.update(a.name.split('.')[1] for a in node.names
                   if a.name.startswith('zhang2017.'))
  return found


def _modules():
  return {os.path.basename(p)[:-3]: p
          for p in glob.glob(os.path.join(PACKAGE, '*.py'))}


class StructureTest(absltest.TestCase):

  def test_no_import_cycles(self):
    graph = {m: _imports(p) for m, p in _modules().items()}
    state = {}

    def visit(m, path):
      if state.get(m) == 'done':
        return
      self.assertNotEqual(state.get(m), 'open',
                          'import cycle: ' + ' -> '.join(path + [m]))
      state[m] = 'open'
      for n in sorted(graph.get(m, ())):
        visit(n, path + [m])
      state[m] = 'done'

    for m in sorted(graph):
      visit(m, [])
    self.assertIn('imagenet', graph['train_lib'])  # The check sees imports.

  def test_no_module_over_the_limit(self):
    for m, p in _modules().items():
      with self.subTest(m):
        with open(p) as f:
          self.assertLessEqual(len(f.readlines()), MAX_LINES, m)

  def test_one_training_loop(self):
    defs = [m for m, p in _modules().items()
            if 'def train_and_evaluate(' in open(p).read()]
    self.assertEqual(defs, ['train_lib'])


if __name__ == '__main__':
  absltest.main()
