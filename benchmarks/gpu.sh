#!/usr/bin/env bash
# Every figure of issue 26's table, in one go. Run from the repository root:
#
#     bash benchmarks/gpu.sh                            # on a GPU machine (a few minutes on an H200)
#     DEVICE=cpu TINY=1 COMPILE=off SKIP_PIP=1 bash benchmarks/gpu.sh   # a dry run of this script
#
# Prints, in order (each benchmark's own lines, then a summary of the figures):
#   1. scoring, SASRec d=64 on 128 x 16 random paths of 10 steps: one-pass / floor at 3.7k items,
#      and two-pass / one-pass at 3.7k, 30k and 100k items            (python -m benchmarks.scoring)
#   2. RL throughput, prorl, paper profile, ProRL's ML-1M, item policy: sampled paths/s, ms per
#      step, peak memory; eager and compile_sampling                  (python -m benchmarks.rl_throughput)
#   3. the same for the semantic-ID policy (constrained decoding)
#   4. one official-profile RL cell, item policy (prorl; its SFT stage cached by an sft cell first)
#                                                                     (python -m benchmarks.gpu_cell)
#   5. with BASELINE_DIR, items 2 and 3 (eager) again with the code of that checkout, side by side
#   6. with STUDY=1, the official-budget study of issue 24 (bash experiments/gpu_study.sh), timed;
#      its pack goes to $OUT/study (5 files: bring back only what fits the window's 8-file limit)
#
# Logs go to $OUT/<name>.log (OUT defaults to ./gpu_out). Settings (environment variables):
#   DEVICE       cuda (default) or cpu
#   TINY=1       tiny synthetic worlds and sizes (a dry run: checks the script, measures nothing)
#   DATA_DIR     ProRL's ML-1M cases (default .gpu_data/prorl-ml-1m)
#   STEPS        timed RL steps per throughput figure (default 30)
#   COMPILE      compile_sampling values timed in 2 and 3 (default off,on; "off" saves the
#                compiler's first calls, tens of seconds per policy)
#   AUTOCAST     autocast values timed in 2 and 3 (default off; off,bf16 adds the bf16 figures)
#   CELL_SET     extra RL keys for the official cell, e.g. "compile_sampling=true autocast=bf16"
#   BASELINE_DIR a checkout of the code to compare with (e.g. a git worktree of 9f5bc14)
#   CACHE_DIR    simulator and SFT cache (default a fresh folder under /tmp, so the simulator is
#                trained: its 'quick' profile, whose training budget fits this script's time; the
#                scored network is the same in every profile, so the figures are unaffected)
#   SKIP_PIP=1   skip the editable install (when the package is already installed)
#   SCORING_ARGS / RL_ARGS / CELL_ARGS  extra arguments for the benchmarks
set -u -o pipefail
DEVICE=${DEVICE:-cuda}
DATA_DIR=${DATA_DIR:-.gpu_data/prorl-ml-1m}
STEPS=${STEPS:-30}
OUT=${OUT:-./gpu_out}
COMPILE=${COMPILE:-off,on}
AUTOCAST=${AUTOCAST:-off}
CELL_SET=${CELL_SET:-}
CACHE_DIR=${CACHE_DIR:-$(mktemp -d /tmp/prorlbench-gpu-cache.XXXXXX)}
SCORING_ARGS=${SCORING_ARGS:-}
RL_ARGS=${RL_ARGS:-}
CELL_ARGS=${CELL_ARGS:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
status=0

if [ "${TINY:-0}" = 1 ]; then
    SCORING_SIZES="--items 60,90 --cases 4 --samples 2 --steps 3 --repeat 1"
    RL_DATA="--tiny --simulator oracle"
    CELL_DATA="--tiny"
else
    SCORING_SIZES="--items 3700,30000,100000 --two-pass-paths 256"
    RL_DATA="--dataset prorl-json --data-dir $DATA_DIR"
    CELL_DATA="--data-dir $DATA_DIR"
fi

if [ "${SKIP_PIP:-0}" != 1 ]; then
    timeout 60 python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tee "$OUT/pip.log" || status=1
fi

echo "== 1. scoring: one-pass vs floor and two-pass ($DEVICE) =="
# shellcheck disable=SC2086
timeout 120 python3 -m benchmarks.scoring --device "$DEVICE" $SCORING_SIZES $SCORING_ARGS 2>&1 \
    | tee "$OUT/scoring.log" || status=1

for policy in item semantic-id; do
    echo "== $([ $policy = item ] && echo 2 || echo 3). RL throughput: prorl, paper profile, $policy policy ($DEVICE) =="
    # shellcheck disable=SC2086
    timeout 300 python3 -m benchmarks.rl_throughput --device "$DEVICE" --profile paper $RL_DATA --policy "$policy" \
        --steps "$STEPS" --warmup 3 --cache-dir "$CACHE_DIR" --compile "$COMPILE" --autocast "$AUTOCAST" $RL_ARGS 2>&1 \
        | tee "$OUT/rl_throughput_$policy.log" || status=1
done

echo "== 4. one official-profile RL cell, item policy ($DEVICE) =="
sets=()
for kv in $CELL_SET; do sets+=(--set "$kv"); done
# shellcheck disable=SC2086
timeout 300 python3 -m benchmarks.gpu_cell --device "$DEVICE" $CELL_DATA --cache-dir "$CACHE_DIR" \
    --out "$OUT/official_cell" "${sets[@]}" $CELL_ARGS 2>&1 | tee "$OUT/official_cell.log" || status=1

if [ -n "${BASELINE_DIR:-}" ]; then
    echo "== 5. the same throughputs with the code of $BASELINE_DIR (eager) =="
    for policy in item semantic-id; do
        # shellcheck disable=SC2086
        (cd "$BASELINE_DIR" && PYTHONPATH="$BASELINE_DIR" timeout 300 python3 -m benchmarks.rl_throughput \
            --device "$DEVICE" --profile paper $RL_DATA --policy "$policy" --steps "$STEPS" --warmup 3 \
            --cache-dir "$CACHE_DIR" $RL_ARGS) 2>&1 | tee "$OUT/baseline_rl_throughput_$policy.log" || status=1
    done
fi

if [ "${STUDY:-0}" = 1 ]; then
    echo "== 6. the official-budget study (experiments/gpu_study.sh) ($DEVICE) =="
    t0=$(date +%s)
    study_extra=""
    [ "${TINY:-0}" = 1 ] && study_extra="--tiny --run $OUT/study_run"
    SKIP_PIP=1 DEVICE="$DEVICE" DATA_DIR="$DATA_DIR" OUT="$OUT/study" EXTRA="$study_extra ${STUDY_ARGS:-}" \
        bash experiments/gpu_study.sh 2>&1 | tee "$OUT/study.log" || status=1
    echo "-- official-budget study: $(( $(date +%s) - t0 )) s wall" | tee -a "$OUT/study.log"
fi

echo "== summary (logs in $OUT) =="
grep -h -E "^-- |one-pass / floor|sampled paths/s|official item-policy RL cell" \
    "$OUT"/scoring.log "$OUT"/rl_throughput_*.log "$OUT"/official_cell.log "$OUT"/baseline_*.log "$OUT"/study.log \
    2>/dev/null \
    | sed -e 's/^/  /'
exit $status
