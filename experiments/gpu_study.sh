#!/usr/bin/env bash
# The official-budget study of ProRL's ML-1M on one GPU (issue 24; docs/findings.md). Run from the
# repository root on the GPU machine, with ProRL's ML-1M files at DATA_DIR:
#
#     bash experiments/gpu_study.sh
#
# It installs the project (unless SKIP_PIP=1), then runs `python -m prorlbench.study.gpu`: the
# item-policy block, then the semantic-ID trio if the time left allows, cells in WORKERS processes
# on the one GPU, into results/prorl-study-gpu (a second call resumes). The files that come back
# (at most 8, each under 16 MiB) are written to $OUT. Settings (environment variables):
#   DEVICE (cuda), WORKERS (4), DATA_DIR (../shared/data/prorl-ml-1m), OUT (./gpu_out),
#   DEADLINE_MIN (13: wall minutes for the blocks), BLOCKS (item,semid), EXTRA (more arguments,
#   e.g. "--tiny" for a CPU dry run with DEVICE=cpu)
set -u -o pipefail
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-4}
DATA_DIR=${DATA_DIR:-../shared/data/prorl-ml-1m}
OUT=${OUT:-./gpu_out}
DEADLINE_MIN=${DEADLINE_MIN:-13}
BLOCKS=${BLOCKS:-item,semid}
EXTRA=${EXTRA:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
start=$(date +%s)
if [ "${SKIP_PIP:-0}" != 1 ]; then
    timeout 120 python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -3
fi
echo "install: $(( $(date +%s) - start )) s"
# shellcheck disable=SC2086
python3 -m prorlbench.study.gpu --device "$DEVICE" --workers "$WORKERS" --data-dir "$DATA_DIR" \
    --pack "$OUT" --deadline-min "$DEADLINE_MIN" --blocks "$BLOCKS" $EXTRA
status=$?
echo "gpu_study.sh: $(( $(date +%s) - start )) s in all, exit $status"
exit $status
