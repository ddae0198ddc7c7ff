#!/usr/bin/env bash
# The GPU session's single call rehearsed on this CPU, twice, as two leases:
# REHEARSAL=1 benchmarks/device_session.sh (tiny runs: 256 images, one
# epoch), then benchmarks/device_carry.py in on its $OUT (results into a
# scratch results folder, cache and ledger into a scratch carried folder),
# then the same call again with both carried in. The first call runs the
# rows alexnet and alexnet_wd (two programs: the probe compiles one, the
# plan the other); the second the rehearsal's four rows (alexnet_random and
# alexnet_wd_random added: runs of the same two programs, so that it has
# runs to start from the cache). Nothing in results/ or .device-cache/ is
# touched.
#
#   nice -n 19 bash benchmarks/rehearse_session.sh [scratch folder]
#
# Checks that the second call compiled nothing (every program from the
# cache) and started no run the first finished; exit status 1 otherwise.
set -u
cd "$(dirname "$0")/.."
d=${1:-/tmp/zhang2017-rehearsal}
rm -rf "$d" && mkdir -p "$d" || exit 1
for i in 1 2; do
  t0=$(date +%s)
  rows=alexnet,alexnet_wd,alexnet_random,alexnet_wd_random
  [ "$i" = 1 ] && rows=alexnet,alexnet_wd
  REHEARSAL=1 ROWS=$rows OUT="$d/out$i" WORK_DIR="$d/work$i" \
    CACHE_DIR="$d/live-cache" CARRIED="$d/carry" SEED_RESULTS="$d/results" \
    bash benchmarks/device_session.sh \
    > "$d/console$i.txt" 2>&1
  rc=$?
  python3 benchmarks/device_carry.py in --from="$d/out$i" \
    --results_dir="$d/results" --carry_dir="$d/carry" --held_dir="$d/held"
  echo "call $i: exit $rc, $(( $(date +%s) - t0 ))s wall; \$OUT:" \
       "$(ls "$d/out$i" | tr '\n' ' ')"
  [ "$rc" = 0 ] || { tail -20 "$d/console$i.txt"; exit 1; }
done
s1=$d/out1/session.txt s2=$d/out2/session.txt
grep -E '^(chosen form|XLA_FLAGS=|device session)' "$s2"
grep -E '^compiles:' "$s1" "$s2"
ok=1
grep -qE '^compiles: [1-9][0-9]* programs loaded .*, 0 compiled' "$s2" ||
  { echo 'FAIL: the second call compiled something'; ok=0; }
for run in $(grep -oE '^start [^ ]+' "$s1" | cut -d' ' -f2); do
  if grep -q "^\[.*\] $run seed 0: fitted\|^\[.*\] $run seed 0: not_fitted" \
      "$s1" && grep -q "^start $run " "$s2"; then
    echo "FAIL: the second call started $run, which the first finished"; ok=0
  fi
done
[ "$ok" = 1 ] && echo 'PASS: the second call compiled nothing and redid no run'
[ "$ok" = 1 ]
