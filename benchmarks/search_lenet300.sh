#!/usr/bin/env bash
# The keras-tuner search of docs/TUNING.md: LeNet-300-100 on MNIST, one
# chief and WORKERS workers of keras-tuner's distributed mode on this
# machine, each worker one process on THREADS CPU threads.
#
# Every trial is a lottery run at a reduced budget (5,000 iterations per
# round, rounds 0 to 10, the test set only at new validation minima); the
# search space and the objective are the `tune` section of
# configs/lenet300_mnist.py.
#
# Usage, from anywhere:
#
#   bash benchmarks/search_lenet300.sh           # the real thing
#   bash benchmarks/search_lenet300.sh --smoke   # 3 smoke trials, a minute
#
# Rerunning resumes the search (finished trials are not run again); a larger
# MAX_TRIALS extends a finished one. Each process logs to WORKDIR/logs/.
#
# Environment (defaults in brackets):
#   PYTHON      the project's Python, keras_lottery installed [python]
#   DATA_DIR    the MNIST IDX files [../shared/data/mnist]
#   WORKDIR     the search's workdir [workdirs/search_lenet300; smoke:
#               workdirs/search_smoke]
#   TUNER       random | bayesian | hyperband [bayesian]
#   MAX_TRIALS  trials in all [30; smoke: 3]
#   WORKERS     worker processes [cores]
#   THREADS     CPU threads per worker [1]
#   PORT        the chief's port on 127.0.0.1 [8000]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == --smoke ]]; then
  config=(--config=configs/lenet300_mnist.py:smoke)
  WORKDIR=${WORKDIR:-workdirs/search_smoke}
  MAX_TRIALS=${MAX_TRIALS:-3}
elif [[ -z "${1:-}" ]]; then
  config=(--config=configs/lenet300_mnist.py
          --config.train.num_steps=5000 --config.prune.num_rounds=10
          --config.train.checkpoint_every_steps=1000)
else
  echo "usage: $0 [--smoke]" >&2
  exit 2
fi
PYTHON=${PYTHON:-python}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
WORKDIR=${WORKDIR:-workdirs/search_lenet300}
MAX_TRIALS=${MAX_TRIALS:-30}
WORKERS=${WORKERS:-$(nproc)}
THREADS=${THREADS:-1}
export KERASTUNER_ORACLE_IP=127.0.0.1
export KERASTUNER_ORACLE_PORT=${PORT:-8000}
export TF_NUM_INTRAOP_THREADS=$THREADS TF_NUM_INTEROP_THREADS=$THREADS
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
args=("${config[@]}" --config.data.dir="$DATA_DIR"
      --config.eval.test_at=best
      --tuner="${TUNER:-bayesian}" --max_trials="$MAX_TRIALS"
      --workdir="$WORKDIR")
mkdir -p "$WORKDIR/logs"
start=$(date +%s)
KERASTUNER_TUNER_ID=chief "$PYTHON" -m binaries.tune "${args[@]}" \
  > "$WORKDIR/logs/chief.log" 2>&1 &
chief=$!
sleep 10  # the chief's oracle server up before the workers ask it
workers=()
for ((i = 0; i < WORKERS; i++)); do
  KERASTUNER_TUNER_ID=tuner$i "$PYTHON" -m binaries.tune "${args[@]}" \
    > "$WORKDIR/logs/tuner$i.log" 2>&1 &
  workers+=($!)
done
for pid in "${workers[@]}"; do
  if ! wait "$pid"; then
    # The chief does not notice failed workers: stop it (a rerun resumes).
    kill "$chief" 2>/dev/null || true
    echo "search: a worker failed; see $WORKDIR/logs/" >&2
    exit 1
  fi
done
if ! wait "$chief"; then
  echo "search: the chief failed; see $WORKDIR/logs/chief.log" >&2
  exit 1
fi
echo "search: $(( $(date +%s) - start )) s; table in" \
  "$WORKDIR/trials.md, best config in $WORKDIR/best_config.py"
