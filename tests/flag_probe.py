r"""Runs one binary on bad values of every numeric and path flag, in-process.

  python tests/flag_probe.py zhang2017.kernel REPORT.json  # Cases beside it.

bad_flags_test.py starts this once per binary (two binaries in one process
would define the same flag names twice). The flags come from the binary's
own absl key flags: every integer flag is tried at 0, -1 and 10**20, every
float flag at 0, -1, 1e300, nan and inf, and every path flag (plus
--flagfile) at a missing path, an unreadable one and one of the wrong kind.
File modes do not stop root (the tests may run as root), so
"unreadable" is a path through a regular file, which open and mkdir refuse
to every user (ENOTDIR); "wrong kind" is a file where a folder goes (a
folder for --flagfile).

Each case resets the flags and runs the binary's `main` under `cli.run`,
the wrapper the binary itself uses, from a small valid command line with one
flag changed, in a fresh case folder. Runs are cut short where they would
train: reaching `STOP` counts as accepted. The report lists, per case, how
it ended (accepted, exit status or traceback), stdout, stderr (both captured
at the file descriptors) and the paths the case added to its folder.
"""

import importlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback

from absl import flags

import testutil
from zhang2017 import cli

INT_VALUES = ('0', '-1', str(10**20))
FLOAT_VALUES = ('0', '-1', '1e300', 'nan', 'inf')
PATH_NAME = re.compile(r'(_dir|_cache|_to)$')
CASE_SECONDS = 120  # A case that takes longer is reported as a hang.
DATA = '--data_dir={shared}/mnist'
OUT = '--output_dir={case}/out'
# Per binary: the valid base command line and where a run stops counting.
BASE = {
    'zhang2017.train': ['--dataset=mnist', DATA, '--model=mlp_1x512',
                        '--batch_size=4', OUT],
    'zhang2017.kernel': ['--dataset=mnist', DATA, '--train_size=16', OUT],
    'zhang2017.expressivity': ['--dataset=mnist', DATA, '--train_size=16',
                               OUT],
    'zhang2017.sweep': ['--experiment=tiny', '--flags_dir={shared}/flags',
                        '--results_dir={case}/results'],
    'zhang2017.report': ['--results_dir={case}/results',
                         f'--flags_dir={testutil.ROOT}/flags'],
}


class Stop(BaseException):
  """Raised where the run would start training: the flags were accepted."""


class Hang(BaseException):
  """A case ran past CASE_SECONDS."""


def _hang(signum, frame):
  del signum, frame
  raise Hang()


def _stop_training(*args, **kwargs):
  del args, kwargs
  raise Stop()


def _no_runs(*args, **kwargs):
  del args, kwargs
  return 0, 0  # (failed, cut): every run would start a training process.


STOP = {'zhang2017.train': ('zhang2017.training.train_lib', 'epoch_order',
                            _stop_training),
        'zhang2017.sweep': ('zhang2017.sweeps.sweep_lib', 'run_all', _no_runs)}


def cases(module_name):
  """[(flag, kind, value)]: the flags' bad values, after a valid baseline."""
  found = [('', 'baseline', None)]
  strings = []
  for flag in flags.FLAGS.get_key_flags_for_module(module_name):
    parser = type(flag.parser)
    if parser is flags.IntegerParser:
      found += [(flag.name, 'int', v) for v in INT_VALUES]
    elif parser is flags.FloatParser:
      found += [(flag.name, 'float', v) for v in FLOAT_VALUES]
    elif parser is flags.ArgumentParser and PATH_NAME.search(flag.name):
      found += [(flag.name, k, None) for k in ('missing', 'unreadable',
                                               'wrong_kind')]
    elif parser is flags.ArgumentParser:
      strings.append(flag.name)
  found += [('flagfile', k, None) for k in ('missing', 'unreadable',
                                            'wrong_kind')]
  return found, strings


def _path(case_dir, flag, kind):
  """A bad path of `kind` inside the case folder (see the module doc)."""
  if kind == 'wrong_kind':
    return os.path.join(case_dir, 'folder' if flag == 'flagfile' else 'file')
  return os.path.join(case_dir, {'missing': 'missing/nope',
                                 'unreadable': 'file/nope'}[kind])


def _tree(root):
  return sorted(os.path.relpath(os.path.join(d, n), root)
                for d, dirs, files in os.walk(root) for n in dirs + files)


def _captured(fd, path):
  """Points fd at `path`; returns a function that restores it."""
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(fd)
  target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
  os.dup2(target, fd)
  os.close(target)

  def restore():
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved, fd)
    os.close(saved)
  return restore


def run_case(module, argv, case_dir):
  """Runs main under cli.run: {'outcome', 'stdout', 'stderr'}."""
  flags.FLAGS.unparse_flags()
  sys.argv = [module.__name__, *argv]
  result = {}
  out, err = os.path.join(case_dir, '..', 'out.txt'), os.path.join(
      case_dir, '..', 'err.txt')
  restore_out, restore_err = _captured(1, out), _captured(2, err)
  signal.alarm(CASE_SECONDS)
  try:
    cli.run(module.main)
    result['outcome'] = 'accepted'  # app.run exits; this is not reached.
  except Stop:
    result['outcome'] = 'accepted'
  except SystemExit as e:
    result['outcome'] = 'accepted' if not e.code else f'exit {e.code}'
  except Hang:
    result['outcome'] = 'hang'
  except Exception:  # pylint: disable=broad-except
    result['outcome'] = 'traceback'
    traceback.print_exc()  # Into the captured stderr.
  finally:
    signal.alarm(0)
    restore_err()
    restore_out()
  for name, path in (('stdout', out), ('stderr', err)):
    with open(path) as f:
      result[name] = f.read()
  return result


def main(module_name, report_path):
  module = importlib.import_module(module_name)
  if module_name in STOP:
    where, name, stub = STOP[module_name]
    setattr(importlib.import_module(where), name, stub)
  signal.signal(signal.SIGALRM, _hang)
  root = tempfile.mkdtemp(prefix='flag-probe-',
                          dir=os.path.dirname(os.path.abspath(report_path)))
  shared = os.path.join(root, 'shared')
  os.makedirs(os.path.join(shared, 'mnist'))
  testutil.mnist_dir(os.path.join(shared, 'mnist'))
  os.makedirs(os.path.join(shared, 'flags', 'tiny'))
  with open(os.path.join(shared, 'flags', 'tiny', 'row.flags'), 'w') as f:
    f.write('--dataset=mnist\n--model=mlp_1x512\n--batch_size=4\n')
  shared_before = _tree(shared)
  found, strings = cases(module_name)
  report = {'strings': strings, 'cases': []}
  for i, (flag, kind, value) in enumerate(found):
    case_dir = os.path.join(root, f'case{i}', 'c')
    os.makedirs(os.path.join(case_dir, 'folder'))
    os.makedirs(os.path.join(case_dir, 'results'))
    with open(os.path.join(case_dir, 'file'), 'w') as f:
      f.write('not a folder\n')
    argv = [a.format(case=case_dir, shared=shared)
            for a in BASE[module_name]]
    if kind != 'baseline':
      value = value if value is not None else _path(case_dir, flag, kind)
      argv.append(f'--{flag}={value}')
    before = _tree(case_dir)
    start = time.time()
    r = run_case(module, argv, case_dir)
    r.update(flag=flag, kind=kind, value=value, argv=argv,
             seconds=round(time.time() - start, 2),
             written=sorted(set(_tree(case_dir)) - set(before)))
    report['cases'].append(r)
  report['shared_changed'] = _tree(shared) != shared_before
  with open(report_path, 'w') as f:
    json.dump(report, f, indent=1)


if __name__ == '__main__':
  main(*sys.argv[1:])
