"""The package's shape: no import cycles, files short enough to read at once,
one training loop, binaries at the top and every other module in a part."""

import ast
import glob
import os

from absl.testing import absltest

import testutil

PACKAGE = os.path.join(testutil.ROOT, 'zhang2017')
MAX_LINES = 300


def _module_name(path):
  """'zhang2017/data/corruption.py' -> 'data.corruption'."""
  rel = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, '.')
  return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _imports(path, modules):
  """The zhang2017 modules a file imports, at top level or in a function."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
        'zhang2017'):
      base = node.module[len('zhang2017.'):]
      for a in node.names:
        name = f'{base}.{a.name}' if base else a.name
        found.add(name if name in modules else base)
    elif isinstance(node, ast.Import):
      found.update(a.name[len('zhang2017.'):] for a in node.names
                   if a.name.startswith('zhang2017.'))
  return found - {''}


def _modules():
  return {_module_name(p): p for p in glob.glob(
      os.path.join(PACKAGE, '**', '*.py'), recursive=True)}


class StructureTest(absltest.TestCase):

  def test_no_import_cycles(self):
    modules = _modules()
    graph = {m: _imports(p, modules) for m, p in modules.items()}
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
    self.assertIn('data.imagenet', graph['training.train_lib'])  # The check sees imports.

  def test_no_module_over_the_limit(self):
    for m, p in _modules().items():
      with self.subTest(m):
        with open(p) as f:
          self.assertLessEqual(len(f.readlines()), MAX_LINES, m)

  def test_binaries_at_the_top_parts_below(self):
    top = sorted(m for m in _modules() if '.' not in m)
    self.assertEqual(top, ['__init__', 'cli', 'data', 'errors', 'expressivity',
                           'kernel', 'models', 'report', 'reporting',
                           'sweep', 'sweeps', 'theory', 'train', 'training'])

  def test_one_training_loop(self):
    defs = [m for m, p in _modules().items()
            if 'def train_and_evaluate(' in open(p).read()]
    self.assertEqual(defs, ['training.train_lib'])


if __name__ == '__main__':
  absltest.main()
