r"""What a GPU session brings back and carries forward (BUILD.md "GPU sessions").

  python benchmarks/device_carry.py in --from=<files_at>   # here, after a call
  python benchmarks/device_carry.py out --out=$OUT ...     # there, at the end
  python benchmarks/device_carry.py compiles <logs or folders> ...

in: unpacks a call's $OUT: results-*.tgz into --results_dir (commit them),
  cache-*.tgz (the compilation cache's new entries, the ledger) and
  checkpoints-*.tgz (cut runs) into the carried folder --carry_dir; keeps
  there the checkpoints that fit under the 64 MiB the call may carry (the
  tree, .device/ and the carried folder together), the most trained first,
  the others in --held_dir; prints the sizes and the `carry` list.
out: packs into $OUT, within its limits (8 files, 16 MiB each, 64 MiB), the
  carried folder's files written after --since (the cache's new entries,
  the ledger) as cache-<i>.tgz, then cut runs' checkpoints and histories as
  checkpoints-<i>.tgz while they fit; says what was left out.
compiles: every compile and persistent-cache hit in logs written with
  JAX_LOG_COMPILES=1 and JAX_EXPLAIN_CACHE_MISSES=1, per log, then totals.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from zhang2017.sweeps import carry
from zhang2017.training import results

_FROM = flags.DEFINE_string('from', None, 'in: the folder of a call\'s files.')
_RESULTS_DIR = flags.DEFINE_string('results_dir', None, 'Default: results/.')
_CARRY_DIR = flags.DEFINE_string('carry_dir', None,
                                 'The carried folder (default .device-cache/).')
_HELD_DIR = flags.DEFINE_string('held_dir', None, 'in: checkpoints that do not '
                                'fit wait here (default .device-held/).')
_OUT = flags.DEFINE_string('out', None, 'out: $OUT.')
_SINCE = flags.DEFINE_float('since', 0, 'out: the session\'s start (Unix s).')


def _mib(n):
  return f'{n / carry.MiB:.1f} MiB'


def tree_bytes(root):
  """Bytes of what a call sends besides carried paths: tracked files and
  untracked ones git does not ignore."""
  names = subprocess.run(['git', 'ls-files', '-z', '-co', '--exclude-standard'],
                         cwd=root, capture_output=True, check=True).stdout
  return sum(os.path.getsize(os.path.join(root, n)) for n in
             names.decode().split('\0') if n and os.path.isfile(
                 os.path.join(root, n)))


def cmd_in(root):
  """`in`: unpacks a call's files here; prints sizes and the carry list."""
  carry_dir = _CARRY_DIR.value or os.path.join(root, '.device-cache')
  held = _HELD_DIR.value or os.path.join(root, '.device-held')
  res = _RESULTS_DIR.value or os.path.join(root, 'results')
  tree, device = tree_bytes(root), carry.size(os.path.join(root, '.device'))
  room = carry.CARRY_BYTES - tree - device - carry.MiB  # 1 MiB to spare.
  got = carry.unpack(_FROM.value, res, carry_dir, held, room)
  print(f'unpacked {got["results"]} results archives into {res}, '
        f'{got["cache"]} cache archives into {carry_dir}')
  for what in ('checkpoints', 'held'):
    if got[what]:
      where = carry_dir if what == 'checkpoints' else held
      print(f'{what} ({where}): {", ".join(got[what])}')
  total = tree + device + carry.size(carry_dir)
  print(f'a call carries: tree {_mib(tree)} + .device {_mib(device)} + '
        f'{os.path.basename(carry_dir)} {_mib(carry.size(carry_dir))} '
        f'(cache {_mib(carry.size(os.path.join(carry_dir, carry.CACHE)))}) = '
        f'{_mib(total)} of {_mib(carry.CARRY_BYTES)}')
  if total > carry.CARRY_BYTES:
    print('over the limit: the cache alone does not fit; delete its oldest '
          f'entries in {carry_dir}/{carry.CACHE} or carry less data')
  print(f'carry: [".device", "{os.path.relpath(carry_dir, root)}"]')


def cmd_out():
  """`out`: packs the cache's new files and cut runs' checkpoints."""
  carry_dir, out = _CARRY_DIR.value, _OUT.value
  ckpts = carry.checkpoint_units(_RESULTS_DIR.value, _SINCE.value)
  files, room = carry.out_room(out)
  room -= carry.MiB  # session.txt still grows.
  cache = [[p] for p in carry.new_files(carry_dir, _SINCE.value)]
  paths, left = carry.pack_units(cache, carry_dir, out, 'cache',
                                 files - bool(ckpts), room)
  room -= sum(os.path.getsize(p) for p in paths)
  print(f'cache: {len(cache)} new files in {len(paths)} archives '
        f'({_mib(sum(os.path.getsize(p) for p in paths))})'
        + (f'; {sum(map(len, left))} files left out (no room)' if left else ''))
  if ckpts:
    paths, left = carry.pack_units(ckpts, _RESULTS_DIR.value, out,
                                   'checkpoints', files - len(paths), room)
    runs = lambda units: ', '.join(os.path.relpath(
        os.path.dirname(u[0]), _RESULTS_DIR.value) for u in units)
    packed = [u for u in ckpts if u not in left]
    print(f'checkpoints of cut runs: {len(packed)} packed ({runs(packed)})'
          + (f'; left out (no room): {runs(left)}' if left else ''))


def cmd_compiles(paths):
  """`compiles`: per log, the compiles and cache hits; then totals."""
  logs = []
  for p in paths:
    if os.path.isdir(p):
      logs += sorted(os.path.join(d, n) for d, _, names in os.walk(p)
                     for n in names if n.endswith('.log'))
    elif os.path.isfile(p):
      logs.append(p)
  hits, compiled = 0, []
  for log in logs:
    with open(log, errors='replace') as f:
      events = carry.compile_events(f.read())
    if not events:
      continue
    mine = [e for e in events if e[1] == 'compiled']
    hits += len(events) - len(mine)
    compiled += mine
    main = ', '.join(f'{n[len("zhang2017_"):]} {how}'
                     + (f' {s:.1f}s' if how == 'compiled' else '')
                     for n, how, s in events if n.startswith('zhang2017_'))
    print(f'  {os.path.relpath(log)}: {len(events) - len(mine)} cache hits, '
          f'{len(mine)} compiled ({sum(e[2] for e in mine):.1f}s); {main}')
  print(f'compiles: {hits} programs loaded from the persistent cache, '
        f'{len(compiled)} compiled in {sum(e[2] for e in compiled):.1f}s')


def main(argv):
  root = results.ROOT
  command = argv[1] if len(argv) > 1 else ''
  if command == 'in':
    cmd_in(root)
  elif command == 'out':
    cmd_out()
  elif command == 'compiles':
    cmd_compiles(argv[2:])
  else:
    raise app.UsageError('say in, out or compiles')


if __name__ == '__main__':
  app.run(main)
