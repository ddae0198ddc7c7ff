#!/usr/bin/env bash
# The GPU session of issue 4, as run on the lent H200 (JAX backend, bf16):
#   bash .device/on-device.sh bash benchmarks/device_session.sh
# 1. benchmarks/speed.py (its random-label fit run is Table 1's Inception
#    random-labels row, kept in results/); 2. the remaining Table 1 conv rows;
# 3. Figure 1b/1c and appendix points, as long as the deadline allows.
# Everything runs under one deadline (BUDGET_S); finished runs' result.json and
# history.csv are packed into $OUT/results.tgz, the logs into $OUT/logs.tgz.
set -u
deadline=$(( $(date +%s) + ${BUDGET_S:-540} ))
left() { echo $(( deadline - $(date +%s) > 1 ? deadline - $(date +%s) : 1 )); }
out=${OUT:-/tmp/zhang2017-out}; mkdir -p "$out"
export JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache   # Same model, same program.
train_flags=--mixed_precision,--eval_batch_size=2500${EXTRA_TRAIN_FLAGS:+,$EXTRA_TRAIN_FLAGS}
sweep() {
  timeout "$(left)" python3 -m zhang2017.sweep --parallel="${PARALLEL:-4}" \
    --memory_fraction="${MEM_FRACTION:-0.2}" --train_flags="$train_flags" "$@"
}
timeout "$(left)" python3 benchmarks/speed.py --mixed_precision \
  --models="${BENCH_MODELS:-inception_small,alexnet_small,mlp_1x512}" \
  --epochs=2 --fit_model="${FIT_MODEL:-inception_small}" \
  --fit_output_dir="results/table1/${FIT_ROW:-inception_random}/seed0" \
  ${BENCH_FLAGS:-} 2>&1 | grep -v -i 'warning\|onednn\|tpu' | tee "$out/benchmark.txt"
sweep --experiment=table1 --rows="${TABLE1_ROWS:-inception,inception_nobn_random,inception_nobn,alexnet,alexnet_random,inception_wd,inception_nobn_wd,alexnet_wd,inception_crop,alexnet_crop,inception_crop_wd,alexnet_crop_wd}"
sweep --experiment=fig1bc --rows="${FIG1BC_ROWS:-inception_small_p05,alexnet_small_p05,inception_small_p02,alexnet_small_p02,inception_small_p08,alexnet_small_p08,inception_small_p01,alexnet_small_p01,inception_small_p03,alexnet_small_p03,inception_small_p04,alexnet_small_p04,inception_small_p06,alexnet_small_p06,inception_small_p07,alexnet_small_p07,inception_small_p09,alexnet_small_p09}"
(find results -name result.json -o -name history.csv | tar czf "$out/results.tgz" -T -)
(find results -name train.log | tar czf "$out/logs.tgz" -T -)
echo "packed $(find results -name result.json | wc -l) results, $(left)s before the deadline"
