#!/usr/bin/env bash
# The queue of long CPU runs, kept going across sittings (README "Long runs on
# a CPU, in sittings").
#
#   scripts/cpu_queue.sh start [COMMIT]  # run the queue at COMMIT (default HEAD)
#   scripts/cpu_queue.sh status          # running or not, its log, finished runs
#   scripts/cpu_queue.sh stop            # stop it; `start` resumes it
#   scripts/cpu_queue.sh stop --after-save [MINUTES]  # first wait (at most
#                                        # MINUTES, default 30) for the next save
#   scripts/cpu_queue.sh collect         # copy finished runs into results/
#   scripts/cpu_queue.sh park            # runs in progress into parked_runs/
#
# The code runs from its own clone of a committed head ($QUEUE/code), so edits
# to this checkout cannot disturb a run; the run folders ($QUEUE/runs) live
# outside the work tree. `start` again (at a newer commit, too) skips finished
# runs and resumes an interrupted one from its last completed epoch (the
# kernel run from its last gram.npz); each result records every commit it ran
# at and adds up the sittings' wall time. One process at a time: on 2 cores a
# second one halves both. The machine is not always handed back as it was:
# `park` copies the runs in progress into the checkout, to be committed, and
# `start` on a new machine resumes them from there; runs finished in
# results/ are not run again.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
QUEUE=${ZHANG2017_QUEUE_DIR:-$HOME/.cache/zhang2017/queue}
CODE=$QUEUE/code RUNS=$QUEUE/runs LOG=$QUEUE/queue.log PIDFILE=$QUEUE/queue.pid
RESULTS=${ZHANG2017_RESULTS_DIR:-$REPO/results}  # Where `collect` copies to.
PARKED=${ZHANG2017_PARKED_DIR:-$REPO/parked_runs}  # Where `park` copies to.

# The order of the CPU issue: the paper's headline rows first.
FIRST=inception_random,inception,alexnet_random,alexnet,inception_nobn
PIXELS=shuffled_pixels,random_pixels,gaussian
KERNEL=theory/kernel-cifar10-gaussian-rf32000-median

# The newest checkpoint.npz, gram.npz or result.json of the runs, with its
# time: it changes when a run saves (each file is written whole, renamed).
last_save() {
  find "$RUNS" \( -name checkpoint.npz -o -name gram.npz -o -name result.json \) \
    -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -n 1 || true  # A file gone mid-listing is no error.
}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# Run folders (relative) under $1 holding a file named $2.
folders() { (cd "$1" 2>/dev/null && find . -name "$2" | sort | sed 's|^\./||; s|/[^/]*$||'); }

state() {  # "<epochs> <run key hash>" of a run folder's checkpoint.
  # "0 -" without one; "0 ?" (and a warning) where it cannot be read.
  [[ -f $1/checkpoint.npz ]] || { echo "0 -"; return; }
  "$PYTHON" -c 'import hashlib, json, sys, numpy as np
m = json.loads(str(np.load(sys.argv[1])["meta"]))
key = json.dumps(m["run_key"], sort_keys=True).encode()
print(len(m["history"]), hashlib.sha256(key).hexdigest()[:12])' \
    "$1/checkpoint.npz" 2>/dev/null || {
    echo "warning: cannot read $1/checkpoint.npz" >&2; echo "0 ?"; }
}

copy_run() {  # copy_run FROM TO FILE...: each file whole or not at all.
  local from=$1 to=$2; shift 2
  mkdir -p "$to"
  for name in "$@"; do
    [[ -f $from/$name ]] || continue
    cp "$from/$name" "$to/$name.part" && mv "$to/$name.part" "$to/$name"
  done
}

PYTHON=${PYTHON:-python3}  # The environment's: run `start` inside your virtualenv.

sweep() {  # Conv runs of the given rows (all when none), mixed bfloat16.
  "$PYTHON" -m zhang2017.sweep --experiment=conv --results_dir="$RUNS" \
    --train_flags=--mixed_precision ${1:+--rows=$1}
}

queue() {  # Runs in $CODE, in the background; every step skips what is done.
  export KERAS_BACKEND=tensorflow PYTHONPATH=$CODE
  echo "queue at $(git rev-parse HEAD), $(date -u +%FT%TZ)"
  # A failed run (its log says why) does not hold up the rest of the queue.
  sweep "$FIRST" || echo "some runs failed (exit $?); the queue goes on"
  [[ -f $RUNS/$KERNEL/result.json ]] || "$PYTHON" -m zhang2017.kernel --dataset=cifar10 --gamma_rule=median \
    --preprocessing=random_features --filters=32000 \
    --output_dir="$RUNS/$KERNEL" || echo "kernel run failed (exit $?); the queue goes on"
  sweep "$PIXELS" || echo "some runs failed (exit $?); the queue goes on"
  sweep || echo "some runs failed (exit $?); the queue goes on"
  echo "queue finished, $(date -u +%FT%TZ)"
}

case "${1:-}" in
  start)
    running && { echo "error: the queue is running (pid $(cat "$PIDFILE")); stop it first" >&2; exit 2; }
    commit=$(git -C "$REPO" rev-parse --verify -q "${2:-HEAD}^{commit}") || {
      echo "error: ${2:-HEAD} is not a commit of $REPO" >&2; exit 2; }
    # The runs train on TensorFlow: without it every run would fail on import.
    "$PYTHON" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)' 2>/dev/null || {
      echo "error: $PYTHON cannot import tensorflow; install it (pip install -e '.[tf]') or set PYTHON to your virtualenv's python" >&2; exit 2; }
    mkdir -p "$QUEUE" "$RUNS"
    [[ -d $CODE/.git ]] || git clone -q --no-checkout "$REPO" "$CODE"
    # Branches, and HEAD for a detached checkout.
    git -C "$CODE" fetch -q "$REPO" "+refs/heads/*:refs/remotes/origin/*" \
      "+HEAD:refs/remotes/origin/checkout-head"
    git -C "$CODE" cat-file -e "$commit^{commit}" 2>/dev/null || {
      echo "error: ${2:-HEAD} is on no branch of $REPO; put it on a branch first" >&2; exit 2; }
    git -C "$CODE" checkout -q --detach "$commit"
    git -C "$CODE" reset -q --hard "$commit"  # A clean tree, exactly COMMIT.
    # The data, as .ci/run finds it (the clone has no ../shared of its own).
    export ZHANG2017_DATA_DIR=${ZHANG2017_DATA_DIR:-$(cd "$REPO/.." && pwd)/shared/data}
    [[ -d $ZHANG2017_DATA_DIR ]] || { echo "error: no data folder $ZHANG2017_DATA_DIR; set ZHANG2017_DATA_DIR" >&2; exit 2; }
    # The queue's runs finished in results/ (on another machine, too) are
    # not run again.
    # (The experiments of sweep_lib.CONV_EXPERIMENTS, and the kernel run.)
    for d in $(folders "$RESULTS" result.json |
               grep -E "^((table1|fig1a|fig2b|fig1bc|appendix)/|$KERNEL\$)"); do
      [[ -f $RUNS/$d/result.json ]] || copy_run "$RESULTS/$d" "$RUNS/$d" result.json
    done
    # Parked runs, where this machine has fewer of their epochs.
    for d in $(folders "$PARKED" checkpoint.npz); do
      [[ -f $RUNS/$d/result.json ]] && continue
      read -r have key <<<"$(state "$RUNS/$d")"
      read -r parked pkey <<<"$(state "$PARKED/$d")"
      [[ $pkey == '?' ]] && continue
      if [[ $key != [-?] && $key != "$pkey" ]]; then
        echo "warning: parked_runs/$d was trained with other flags than $RUNS/$d; left alone (delete the stale one)" >&2
        continue
      fi
      ((parked > have)) || continue
      copy_run "$PARKED/$d" "$RUNS/$d" history.csv checkpoint.npz
      echo "resumes $d from parked_runs/ after epoch $parked (this machine had $have)"
    done
    rm -f "$PIDFILE"
    cd "$CODE"  # A simple command in the background: it holds no pipe of ours.
    setsid nohup bash "$CODE/scripts/cpu_queue.sh" _queue >>"$LOG" 2>&1 \
      </dev/null &
    for _ in $(seq 50); do [[ -s $PIDFILE ]] && break; sleep 0.1; done
    echo "queue started at ${commit:0:12} (pid $(cat "$PIDFILE")); log: $LOG"
    ;;
  _queue)  # The leader of its own session: `stop` signals the whole group.
    echo $$ >"$PIDFILE"
    if [[ -n ${ZHANG2017_QUEUE_CMD:-} ]]; then  # Tests: a stand-in queue.
      eval "$ZHANG2017_QUEUE_CMD"
    else
      queue
    fi ;;
  stop)
    minutes=${3:-30}
    if [[ -n ${2:-} && ${2:-} != --after-save ]]; then
      echo "error: stop takes no argument but --after-save [MINUTES], not '$2'" >&2; exit 2
    elif [[ ! $minutes =~ ^[0-9]+([.][0-9]+)?$ ]]; then
      echo "error: --after-save takes the minutes to wait at most, e.g. 'stop --after-save 30', not '$minutes'" >&2; exit 2
    elif (($# > 3)); then
      echo "error: stop --after-save takes one number of minutes, not '${*:4}' after it" >&2; exit 2
    fi
    running || { echo "the queue is not running"; exit 0; }
    pid=$(cat "$PIDFILE")
    if [[ ${2:-} == --after-save ]]; then  # The work since the last save is kept.
      before=$(last_save)
      deadline=$(awk -v now="$(date +%s)" -v m="$minutes" 'BEGIN { printf "%d", now + m * 60 }')
      echo "waiting for the next save (at most $minutes min; Ctrl-C leaves the queue running)"
      while running && [[ $(last_save) == "$before" ]] && (($(date +%s) < deadline)); do sleep 2; done
      now=$(last_save)
      if [[ $now != "$before" ]]; then echo "saved: ${now#* }"
      elif running; then echo "no save within $minutes min; stopping now (work since the last save is lost)"; fi
    fi
    running || { rm -f "$PIDFILE"; echo "the queue has finished"; exit 0; }
    kill -TERM -- "-$pid" || true  # The sweep stops its runs; checkpoints stay.
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid"
    rm -f "$PIDFILE"
    echo "queue stopped; 'start' resumes it"
    ;;
  status)
    if running; then echo "running (pid $(cat "$PIDFILE")) at $(git -C "$CODE" rev-parse --short HEAD)"
    else echo "not running"; fi
    [[ -f $LOG ]] && tail -n 5 "$LOG"
    for d in $(folders "$RUNS" checkpoint.npz); do
      echo "in progress: $d ($(($(wc -l <"$RUNS/$d/history.csv") - 1)) epochs)"
      [[ -f $RUNS/$d/train.log ]] && tail -n 1 "$RUNS/$d/train.log"
    done
    for d in $(folders "$RUNS" gram.npz); do
      echo "in progress: $d (dot products saved $(date -r "$RUNS/$d/gram.npz" -u +%FT%TZ))"
    done
    for d in $(folders "$RUNS" result.json); do
      [[ -f $RESULTS/$d/result.json ]] || echo "finished, not collected: $d"
    done
    for d in $(folders "$PARKED" checkpoint.npz); do
      read -r e _ <<<"$(state "$PARKED/$d")"
      if [[ -f $RESULTS/$d/result.json ]]; then
        echo "parked: $d, collected already (git rm -r parked_runs/$d)"
      else echo "parked: $d ($e epochs)"; fi
    done
    ;;
  collect)
    n=0
    for d in $(folders "$RUNS" result.json); do
      [[ -f $RESULTS/$d/result.json ]] && continue
      mkdir -p "$RESULTS/$d"
      for name in history.csv examples.npz result.json; do  # result.json last: complete.
        [[ -f $RUNS/$d/$name ]] && cp "$RUNS/$d/$name" "$RESULTS/$d/"
      done
      echo "collected $d"; n=$((n + 1))
      if [[ -d $PARKED/$d ]]; then  # Its parked checkpoint is spent.
        rm -r "$PARKED/$d"; echo "removed parked_runs/$d (git rm it)"
      fi
    done
    echo "$n runs collected; now: python -m zhang2017.report, then commit"
    ;;
  park)  # Stopped first: a run writes its checkpoint at every epoch.
    running && { echo "error: the queue is running (pid $(cat "$PIDFILE")); stop it first" >&2; exit 2; }
    n=0
    for d in $(folders "$RUNS" checkpoint.npz); do
      [[ -f $RUNS/$d/result.json ]] && continue
      read -r e key <<<"$(state "$RUNS/$d")"
      [[ $key == '?' ]] && continue
      read -r had pkey <<<"$(state "$PARKED/$d")"
      [[ $pkey == "$key" ]] && ((had >= e)) && continue  # Parked already.
      copy_run "$RUNS/$d" "$PARKED/$d" history.csv checkpoint.npz
      echo "parked $d ($e epochs, $(stat -c %s "$PARKED/$d/checkpoint.npz" | awk '{printf "%.1f", $1 / 1048576}') MiB)"
      n=$((n + 1))
    done
    echo "$n runs parked; now: git add parked_runs, then commit"
    ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
