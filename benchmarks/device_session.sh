#!/usr/bin/env bash
# The GPU session, one call: probe, choose, run the conv plan, pack.
#
#   On the lent H200 (BUILD.md "GPU sessions"; carry [".device", ".device-cache"]):
#     BUDGET_S=540 ZHANG2017_GIT_COMMIT=<40 hex> \
#       bash .device/on-device.sh bash benchmarks/device_session.sh
#   Rehearsal on this CPU (tiny runs of four AlexNet rows), twice:
#     nice -n 19 bash benchmarks/rehearse_session.sh
#
# 1. Seed: the committed results (SEED_RESULTS, default results/) and the
#    carried folder (CARRIED, default .device-cache/: the JAX compilation
#    cache with XLA's autotuning results, ledger.json, cut runs'
#    checkpoints) are copied into WORK_DIR before anything compiles, so
#    finished runs are skipped and cut ones resume.
# 2. Probe (benchmarks/compile_probe.py, until PROBE_S after the start): the
#    forms of the plan's next program, one compile at a time, with the cache
#    on and the runs' own flags; the rule of zhang2017/sweeps/deadline.py
#    picks the case (form + XLA_FLAGS), or keeps the carried one.
# 3. XLA_FLAGS of the case is exported for everything after; the conv plan
#    runs PARALLEL at a time, one new program compiling at a time, and a run
#    starts only if its expected time fits before the deadline less
#    RESERVE_S; at that point running runs are cut (their checkpoints stay).
# 4. $OUT (at most 8 files): session.txt (this output), logs.tgz (the probe's
#    and the runs' logs), results-<i>.tgz (runs finished here), cache-<i>.tgz
#    (new cache entries, the ledger), checkpoints-<i>.tgz (cut runs, while
#    they fit). Here: benchmarks/device_carry.py in --from=<files_at>.
# Environment: BUDGET_S (default 540), ZHANG2017_GIT_COMMIT (the 40-character
# commit; required unless REHEARSAL), PROBE_S (BUDGET_S / 2), RESERVE_S (40),
# PROBE_CASES (default: every case), PARALLEL (4), MEM_FRACTION (0.2), ROWS,
# OUT, WORK_DIR, CACHE_DIR (keep it the same on every lease), CARRIED,
# SEED_RESULTS.
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ -n "${REHEARSAL:-}" ]; then
  flags=(--train_size=256 --test_size=256 --epochs=1 --eval_batch_size=256)
  budget=${BUDGET_S:-300} reserve=${RESERVE_S:-20} parallel=${PARALLEL:-2}
  cases=${PROBE_CASES:-step-autotune0,step}
  rows=${ROWS-alexnet,alexnet_wd,alexnet_random,alexnet_wd_random}
  seed=${SEED_RESULTS:-} carried=${CARRIED:-}
  commit=${ZHANG2017_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}
else
  flags=(--mixed_precision --eval_batch_size=2500)
  budget=${BUDGET_S:-540} reserve=${RESERVE_S:-40} parallel=${PARALLEL:-4}
  cases=${PROBE_CASES:-} rows=${ROWS:-}
  seed=${SEED_RESULTS:-results} carried=${CARRIED:-.device-cache}
  commit=${ZHANG2017_GIT_COMMIT:-}
fi
if ! [[ $commit =~ ^[0-9a-f]{40}$ ]]; then
  echo "error: ZHANG2017_GIT_COMMIT='$commit' is not a 40-character commit;" \
       'pass ZHANG2017_GIT_COMMIT=$(git rev-parse HEAD) in the call' >&2
  exit 2
fi
deadline=$(( start + budget ))
left() { echo $(( deadline - $(date +%s) )); }
out=${OUT:-/tmp/zhang2017-out} work=${WORK_DIR:-/tmp/zhang2017-session}
# The same absolute path on every lease: JAX keeps XLA's autotuning cache
# inside it and that path enters every compilation cache key.
cache=${CACHE_DIR:-/tmp/zhang2017-carry} res=$work/results logs=$work/logs
rm -rf "$work" "$cache" && mkdir -p "$out" "$res" "$cache" "$logs" || exit 1
[ -n "$seed" ] && [ -d "$seed" ] && cp -a "$seed"/. "$res"/
[ -n "$carried" ] && [ -d "$carried" ] && cp -a "$carried"/. "$cache"/
if [ -d "$cache/checkpoints" ]; then  # Cut runs resume from these.
  cp -a "$cache/checkpoints"/. "$res"/ && rm -rf "$cache/checkpoints"
fi
export JAX_COMPILATION_CACHE_DIR=$cache/jax-cache ZHANG2017_GIT_COMMIT=$commit
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1 \
  JAX_LOG_COMPILES=1 JAX_EXPLAIN_CACHE_MISSES=1 \
  KERAS_BACKEND=${KERAS_BACKEND:-jax} TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
train_flags=$(IFS=,; echo "${flags[*]}")
{
  echo "device session: commit $commit"
  echo "budget ${budget}s: probe until +${PROBE_S:-$(( budget / 2 ))}s," \
       "${reserve}s kept to pack; $parallel runs at a time; rows ${rows:-all}"
  echo "training flags: $train_flags"
  echo "carried in: $(find "$cache/jax-cache" -type f 2>/dev/null | wc -l)" \
       "cache files, ledger $([ -f "$cache/ledger.json" ] && echo yes || echo no)," \
       "$(find "$res" -name checkpoint.npz | wc -l) checkpoints," \
       "$(find "$res" -name result.json | wc -l) finished runs"
  python3 benchmarks/compile_probe.py --experiment=conv ${rows:+--rows=$rows} \
    --results_dir="$res" --train_flags="$train_flags" --ledger_dir="$cache" \
    --probe_logs="$logs" --choice_file="$work/choice.sh" \
    --probe_until=$(( start + ${PROBE_S:-$(( budget / 2 ))} )) \
    --until=$(( deadline - reserve )) \
    ${cases:+--cases=$cases} 2>&1
  CASE=none FORM=none STEPS_PER_CALL= XLA_FLAGS=
  [ -f "$work/choice.sh" ] && . "$work/choice.sh"
  echo "chosen form: $CASE (form $FORM, --steps_per_call=$STEPS_PER_CALL)"
  echo "XLA_FLAGS=$XLA_FLAGS"
  export XLA_FLAGS  # The same for every run below.
  limit=$(( $(left) - reserve ))
  if [ "$CASE" = none ]; then
    echo 'no run starts: no case compiled (each run would compile a program' \
         'the probe could not); the cache keeps what it got'
  elif [ "$limit" -le 0 ]; then
    echo "no run starts: $(left)s left"
  else
    python3 -m zhang2017.sweep --experiment=conv ${rows:+--rows=$rows} \
      --results_dir="$res" --parallel="$parallel" \
      --memory_fraction="${MEM_FRACTION:-0.2}" \
      --compilation_cache="$JAX_COMPILATION_CACHE_DIR" --ledger_dir="$cache" \
      --max_compiling=1 --time_limit="$limit" --pack_to="$out" \
      --train_flags="$train_flags,--steps_per_call=$STEPS_PER_CALL" 2>&1
  fi
  # This session's logs: the probe's, and the runs' (appended to when resumed).
  find "$res" -name train.log -newermt "@$start" > "$work/run-logs"
  echo "compile times and cache hits, per log:"
  python3 benchmarks/device_carry.py compiles "$logs" $(cat "$work/run-logs") 2>&1
  tar czf "$out/logs.tgz" -C "$work" logs \
    $(sed "s|^$work/||" "$work/run-logs") 2>&1
  python3 benchmarks/device_carry.py out --out="$out" --carry_dir="$cache" \
    --results_dir="$res" --since="$start" 2>&1
  echo "\$OUT: $(ls "$out" | tr '\n' ' ')"
  echo "$(left)s left before the deadline"
} 2>&1 | tee "$out/session.txt"
