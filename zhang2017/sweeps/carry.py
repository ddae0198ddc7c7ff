"""What travels between this machine and a lent GPU, within its limits.

Back from the device ($OUT: at most 8 flat files of 16 MiB, 64 MiB
together): session.txt, logs.tgz, results-<i>.tgz (runs finished there),
cache-<i>.tgz (the compilation cache's new entries and the ledger) and
checkpoints-<i>.tgz (cut runs' checkpoints, while they fit). To the device
(the whole tree at most 64 MiB): `.device/` (wheels, data) and the carried
folder, `.device-cache/`: `jax-cache/`, `ledger.json` and `checkpoints/`
(run folders), as plain folders (cache entries are compressed already).
"""

import os
import re
import shutil
import tarfile

from zhang2017.errors import UserError
from zhang2017.training import results

MiB = 1 << 20
OUT_FILES = 8
OUT_FILE_BYTES = 16 * MiB
OUT_BYTES = 64 * MiB
CARRY_BYTES = 64 * MiB
RESULT_FILES = 2
CACHE = 'jax-cache'
CHECKPOINTS = 'checkpoints'
CHECKPOINT = 'checkpoint.npz'


def _groups(units, max_bytes):
  """Consecutive groups of units (lists of paths) of at most `max_bytes`
  input each (a larger unit alone)."""
  groups, size = [[]], 0
  for unit in units:
    n = sum(os.path.getsize(p) for p in unit)
    if size + n > max_bytes and groups[-1]:
      groups.append([])
      size = 0
    groups[-1].extend(unit)
    size += n
  return [g for g in groups if g]


def _write_tgz(path, members, root):
  with tarfile.open(path + '.tmp', 'w:gz') as tar:
    for m in members:
      tar.add(m, arcname=os.path.relpath(m, root))
  os.replace(path + '.tmp', path)  # A kill never leaves half an archive.


def pack(runs, results_dir, out_dir, max_files=RESULT_FILES,
         max_bytes=OUT_FILE_BYTES):
  """Packs finished runs' result.json, history.csv and examples.npz into
  results-<i>.tgz files.

  Paths inside are relative to `results_dir` (<experiment>/<row>/seed<k>/),
  so `tar xzf` in another results folder puts them in place. Incomplete runs
  are left out. Files are cut at `max_bytes` of input (compressed, they are
  smaller).

  Returns:
    The archive paths written.

  Raises:
    UserError: more than `max_files` archives would be needed.
  """
  units = []
  for r in runs:
    if results.load(r.run_dir) is None:
      continue
    units.append([p for p in (os.path.join(r.run_dir, n) for n in (
        results.RESULT, results.HISTORY, results.EXAMPLES))
                  if os.path.exists(p)])
  groups = _groups(units, max_bytes)
  if len(groups) > max_files:
    raise UserError(f'{sum(map(len, units))} files need {len(groups)} '
                    f'archives of {max_bytes >> 20} MiB; the limit is '
                    f'{max_files}')
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for i, group in enumerate(groups):
    paths.append(os.path.join(out_dir, f'results-{i}.tgz'))
    _write_tgz(paths[-1], group, results_dir)
  return paths


def out_room(out_dir):
  """(files, bytes) that $OUT may still take."""
  names = os.listdir(out_dir) if os.path.isdir(out_dir) else []
  used = sum(os.path.getsize(os.path.join(out_dir, n)) for n in names)
  return OUT_FILES - len(names), OUT_BYTES - used


def pack_units(units, root, out_dir, prefix, max_files, max_bytes):
  """Packs units (lists of paths under `root`, each kept whole) into
  <prefix>-<i>.tgz, in order, while `max_files` archives and `max_bytes`
  (all of them) last, each at most OUT_FILE_BYTES.

  Returns:
    (archive paths, units left out).
  """
  paths, left, budget = [], [], max_bytes
  # 1 MiB per archive for tar headers: small files grow when packed.
  for group in _groups(units, OUT_FILE_BYTES - MiB):
    path = os.path.join(out_dir, f'{prefix}-{len(paths)}.tgz')
    if len(paths) < max_files:
      _write_tgz(path, group, root)
      n = os.path.getsize(path)
      if n <= min(OUT_FILE_BYTES, budget):
        paths.append(path)
        budget -= n
        continue
      os.remove(path)
    left.append(group)
  return paths, left


def new_files(root, since):
  """Files under `root` modified after `since` (seconds), sorted."""
  return sorted(os.path.join(d, n) for d, _, names in os.walk(root)
                for n in names
                if os.path.getmtime(os.path.join(d, n)) > since)


def checkpoint_units(results_dir, since):
  """[[checkpoint.npz, history.csv]] of runs that trained after `since`
  and are not finished, the most epochs first."""
  units = []
  for path in new_files(results_dir, since):
    if os.path.basename(path) == CHECKPOINT:
      d = os.path.dirname(path)
      if results.load(d) is None:
        history = os.path.join(d, results.HISTORY)
        units.append([path] + [history] * os.path.exists(history))
  epochs = lambda u: len(results.read_csv(u[1])) if len(u) > 1 else 0
  return sorted(units, key=lambda u: -epochs(u))


def _extract(archive, dest):
  with tarfile.open(archive) as tar:
    for m in tar.getmembers():  # Only plain files, only below `dest`.
      if not m.isfile() or m.name.startswith(('/', '..')) or '/../' in m.name:
        raise UserError(f'{archive}: unexpected member {m.name}; unpack '
                        'only archives the device session wrote')
    tar.extractall(dest)


def size(path):
  """Bytes of a file or of every file under a folder (0 if missing)."""
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, n))
             for d, _, names in os.walk(path) for n in names)


def run_folders(root):
  """Run folders (…/<row>/seed<k>) under `root` holding a checkpoint."""
  return sorted(d for d, _, names in os.walk(root) if CHECKPOINT in names)


def unpack(src, results_dir, carry_dir, held_dir, room):
  """Puts what came back from the device in place.

  results-*.tgz go into `results_dir`; cache-*.tgz into `carry_dir`;
  checkpoints-*.tgz into `carry_dir`/checkpoints, replacing older ones.
  Checkpoints of runs now finished are deleted. Then checkpoints, the most
  epochs first, stay in the carried folder while its size fits in `room`
  bytes; the others wait in `held_dir` (not carried) for a later lease.

  Returns:
    {'results', 'cache', 'checkpoints', 'held'}: files / run folders.
  """
  names = sorted(os.listdir(src))
  got = {'results': 0, 'cache': 0}
  ckpts = os.path.join(carry_dir, CHECKPOINTS)
  for n in names:
    path = os.path.join(src, n)
    if re.fullmatch(r'results-\d+\.tgz', n):
      _extract(path, results_dir)
      got['results'] += 1
    elif re.fullmatch(r'cache-\d+\.tgz', n):
      _extract(path, carry_dir)
      got['cache'] += 1
  for n in names:  # Newer than any kept here: they replace them.
    if re.fullmatch(r'checkpoints-\d+\.tgz', n):
      tmp = os.path.join(carry_dir, '.incoming')
      _extract(os.path.join(src, n), tmp)
      for d in run_folders(tmp):
        rel = os.path.relpath(d, tmp)
        for old in (os.path.join(ckpts, rel), os.path.join(held_dir, rel)):
          shutil.rmtree(old, ignore_errors=True)
        os.makedirs(os.path.dirname(os.path.join(ckpts, rel)), exist_ok=True)
        shutil.move(d, os.path.join(ckpts, rel))
      shutil.rmtree(tmp)
  pool = []
  for root in (ckpts, held_dir):
    for d in run_folders(root):
      rel = os.path.relpath(d, root)
      if results.load(os.path.join(results_dir, rel)) is not None:
        shutil.rmtree(d)  # The run finished: its checkpoint is spent.
        continue
      history = os.path.join(d, results.HISTORY)
      epochs = len(results.read_csv(history)) if os.path.exists(history) else 0
      pool.append((-epochs, rel, d))
  budget = room - size(carry_dir) + sum(size(d) for _, _, d in pool)
  kept, held = [], []
  for _, rel, d in sorted(pool):
    dest = os.path.join(ckpts if size(d) <= budget else held_dir, rel)
    if size(d) <= budget:
      budget -= size(d)
      kept.append(rel)
    else:
      held.append(rel)
    if os.path.abspath(d) != os.path.abspath(dest):
      os.makedirs(os.path.dirname(dest), exist_ok=True)
      shutil.move(d, dest)
  got.update(checkpoints=kept, held=held)
  return got


_HIT = re.compile(r"Persistent compilation cache hit for 'jit_(\w+)'")
_MISS = re.compile(r"PERSISTENT COMPILATION CACHE MISS for 'jit_(\w+)'")
_DONE = re.compile(r'Finished XLA compilation of jit\((\w+)\) in ([\d.]+) sec')


def compile_events(text):
  """[(program, 'hit' or 'compiled', seconds)] from a log written with
  JAX_LOG_COMPILES=1 and JAX_EXPLAIN_CACHE_MISSES=1."""
  pending, events = {}, []
  for line in text.splitlines():
    m = _HIT.search(line) or _MISS.search(line)
    if m:
      pending[m.group(1)] = 'hit' if m.re is _HIT else 'compiled'
      continue
    m = _DONE.search(line)
    if m:
      events.append((m.group(1), pending.pop(m.group(1), 'compiled'),
                     float(m.group(2))))
  return events
