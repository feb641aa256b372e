#!/usr/bin/env bash
# The GPU figures, in one go (about 2 minutes on an H100). Run from the repository root:
#
#     bash benchmarks/gpu.sh
#
# Logs go to $OUT/<name>.log (OUT defaults to ./gpu_out). Settings (environment variables):
#   DEVICE     cuda (default) or cpu, for a dry run of this script
#   DATA_DIR   ProRL's ML-1M cases (default .gpu_data/prorl-ml-1m)
#   STEPS      timed RL steps (default 30)
#   CACHE_DIR  simulator cache (default a fresh folder under /tmp, so the simulator is trained:
#              its 'quick' profile, whose training budget fits this script's time; the scored
#              network is the same in both profiles, so the throughput figure is unaffected)
#   SKIP_PIP=1 skip the editable install (when the package is already installed)
#   SCORING_ARGS / RL_ARGS  extra arguments for the two benchmarks (e.g. tiny sizes for a dry run)
set -u -o pipefail
DEVICE=${DEVICE:-cuda}
DATA_DIR=${DATA_DIR:-.gpu_data/prorl-ml-1m}
STEPS=${STEPS:-30}
OUT=${OUT:-./gpu_out}
CACHE_DIR=${CACHE_DIR:-$(mktemp -d /tmp/prorlbench-gpu-cache.XXXXXX)}
SCORING_ARGS=${SCORING_ARGS:-}
RL_ARGS=${RL_ARGS:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
status=0

if [ "${SKIP_PIP:-0}" != 1 ]; then
    timeout 60 python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tee "$OUT/pip.log" || status=1
fi

echo "== scoring: one-pass vs two-pass ($DEVICE) =="
# shellcheck disable=SC2086
timeout 40 python3 -m benchmarks.scoring --device "$DEVICE" $SCORING_ARGS 2>&1 | tee "$OUT/scoring.log" || status=1

echo "== RL throughput: prorl, paper profile, ProRL ML-1M ($DEVICE) =="
# shellcheck disable=SC2086
timeout 90 python3 -m benchmarks.rl_throughput --device "$DEVICE" --profile paper --dataset prorl-json \
    --data-dir "$DATA_DIR" --steps "$STEPS" --warmup 3 --cache-dir "$CACHE_DIR" $RL_ARGS 2>&1 \
    | tee "$OUT/rl_throughput.log" || status=1

exit $status
