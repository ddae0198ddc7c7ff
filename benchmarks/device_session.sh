#!/usr/bin/env bash
# The GPU session: every CIFAR-10 conv-net run of the paper under one deadline.
#
#   On the lent H200 (JAX backend, bf16; BUILD.md "GPU sessions"):
#     ZHANG2017_GIT_COMMIT=<sha> bash .device/on-device.sh bash benchmarks/device_session.sh
#   Rehearsal on a 2-core CPU (tiny sizes, all 38 runs, the real packing):
#     REHEARSAL=1 bash benchmarks/device_session.sh
#
# 1. benchmarks/speed.py, fit only: wall time to fit random labels with small
#    Inception, its first epoch (compilation included) and s/epoch; the fit
#    is the plan's table1/inception_random run (same flags), so the plan
#    reuses it, and its compiled programs (the persistent cache).
# 2. python -m zhang2017.sweep --experiment=conv: 38 runs, PARALLEL at once,
#    one JAX compilation cache, killed at the deadline (a cut run leaves no
#    result.json).
# 3. Finished runs' result.json + history.csv go to $OUT/results-<i>.tgz
#    after every run that ends (paths relative to the results folder: unpack
#    with `tar xzf results-0.tgz -C results`); the logs and the histories of
#    cut runs to $OUT/logs.tgz; the console output to $OUT/session.txt. The
#    run folders themselves stay outside $OUT (only 8 files, 2 folders deep,
#    come back from it).
# Environment: BUDGET_S (default 540; the deadline: set it from the device's
# budget left, less the start-up), BENCH_S (default 240; the benchmark's cap),
# PARALLEL, MEM_FRACTION, RESULTS_DIR,
# STEPS_PER_CALL (from benchmarks/compile_probe.py), SKIP_BENCH=1, ROWS (a
# comma-separated subset of the plan's rows, e.g. for the test suite).
set -u
cd "$(dirname "$0")/.."
deadline=$(( $(date +%s) + ${BUDGET_S:-540} ))
left() { local s=$(( deadline - $(date +%s) )); echo $(( s > 1 ? s : 1 )); }
out=${OUT:-/tmp/zhang2017-out}; mkdir -p "$out"
res=${RESULTS_DIR:-/tmp/zhang2017-results}   # results/ is never touched here
mkdir -p "$res"
export JAX_COMPILATION_CACHE_DIR=${CACHE_DIR:-/tmp/zhang2017-jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
export KERAS_BACKEND=${KERAS_BACKEND:-jax} TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
if [ -n "${REHEARSAL:-}" ]; then
  flags=(--train_size=256 --test_size=256 --epochs=1 --eval_batch_size=256)
  bench=(--models= --fit_epochs=1 --train_size=256 --test_size=256
         --eval_batch_size=256)
  parallel=${PARALLEL:-2}
else
  flags=(--mixed_precision --eval_batch_size=2500)
  # Fit only: its history gives Inception's compile time (first epoch) and
  # s/epoch, and its programs are the plan's (the cache serves them).
  bench=(--mixed_precision --models= --eval_batch_size=2500)
  parallel=${PARALLEL:-4}
fi
if [ -n "${STEPS_PER_CALL:-}" ]; then
  flags+=(--steps_per_call="$STEPS_PER_CALL")
  bench+=(--steps_per_call="$STEPS_PER_CALL")
fi
train_flags=$(IFS=,; echo "${flags[*]}")
{
  echo "device session: budget ${BUDGET_S:-540}s, parallel $parallel," \
       "train flags $train_flags, results in $res"
  if [ -z "${SKIP_BENCH:-}" ]; then
    # Capped: a fit cut here resumes in the plan from its checkpoint.
    cap=$(( $(left) - 120 < ${BENCH_S:-240} ? $(left) - 120 : ${BENCH_S:-240} ))
    if [ "$cap" -gt 30 ]; then
      timeout "$cap" python3 benchmarks/speed.py "${bench[@]}" \
        --fit_output_dir="$res/table1/inception_random/seed0" 2>&1 |
        grep --line-buffered -v -E '^[IW][0-9]{4} |libtpu|oneDNN|cpu_feature|rebuild TensorFlow'
    fi
  fi
  # Leave 30 s to pack and copy back; the sweep also packs after every run.
  limit=$(( $(left) - 30 ))
  if [ "$limit" -gt 30 ]; then
    python3 -m zhang2017.sweep --experiment=conv --results_dir="$res" \
      --parallel="$parallel" --memory_fraction="${MEM_FRACTION:-0.2}" \
      --compilation_cache="$JAX_COMPILATION_CACHE_DIR" --time_limit="$limit" \
      --train_flags="$train_flags" --pack_to="$out" ${ROWS:+--rows="$ROWS"}
  else
    echo "only $(left)s left: no sweep"
  fi
  (cd "$res" && find . -name train.log -o -name history.csv |
     tar czf "$out/logs.tgz" -T -)
  echo "$(left)s left before the deadline"
} 2>&1 | tee "$out/session.txt"
