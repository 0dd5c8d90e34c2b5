#!/usr/bin/env bash
# Frankle & Carbin's LeNet-300-100 experiment (issue 4), end to end:
#
#   1. for each seed: the lottery run (iterative pruning, 19 rounds of
#      50,000 iterations), then both controls (random reinit, random prune);
#   2. for each seed: the one-shot run of the same config;
#   3. the tfmot gradual-pruning baseline, in its own virtualenv (Keras 2);
#   4. the report: tables and plots in docs/results.
#
# Usage, from anywhere:
#
#   bash benchmarks/reproduce_lenet300.sh            # the real thing
#   bash benchmarks/reproduce_lenet300.sh --smoke    # the pipeline in minutes
#
# Rerunning resumes: the binaries skip finished rounds and continue an
# unfinished one from its checkpoint, the baseline skips finished runs, and
# the report is redrawn from whatever has finished. Each step's output goes
# to WORKDIRS/logs/STEP.log.
#
# Environment (defaults in brackets):
#   PYTHON       the project's Python, keras_lottery installed [python]
#   DATA_DIR     the MNIST IDX files [../shared/data/mnist]
#   SEEDS        seeds [0 1 2; smoke: 0 1]
#   WORKDIRS     where the runs go [workdirs/lenet300; smoke: workdirs/smoke]
#   OUTPUT       the report's folder [docs/results; smoke: WORKDIRS/report]
#   TFMOT_VENV   the baseline's virtualenv, created if missing
#                [workdirs/tfmot_venv]; TFMOT_VENV=none skips the baseline
#   TFMOT_JSON   the baseline's results [benchmarks/results/tfmot.json;
#                smoke: WORKDIRS/tfmot.json]
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
case "${1:-}" in
  --smoke) smoke=true ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
TFMOT_VENV=${TFMOT_VENV:-workdirs/tfmot_venv}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if $smoke; then
  SEEDS=${SEEDS:-0 1}
  WORKDIRS=${WORKDIRS:-workdirs/smoke}
  OUTPUT=${OUTPUT:-$WORKDIRS/report}
  TFMOT_JSON=${TFMOT_JSON:-$WORKDIRS/tfmot.json}
  config=configs/lenet300_mnist.py:smoke
  # One smoke round: 300 iterations; 1 - remaining at its rounds 1, 2, 3.
  tfmot_flags=(--steps=300 --seeds=0 --sparsities=0.1996,0.3593,0.4872)
  extra=(--config.export.enabled=false)
else
  SEEDS=${SEEDS:-0 1 2}
  WORKDIRS=${WORKDIRS:-workdirs/lenet300}
  OUTPUT=${OUTPUT:-docs/results}
  TFMOT_JSON=${TFMOT_JSON:-benchmarks/results/tfmot.json}
  config=configs/lenet300_mnist.py
  tfmot_flags=(--steps=50000 "--seeds=$(echo $SEEDS | tr ' ' ,)")
  extra=()
fi
logs=$WORKDIRS/logs
mkdir -p "$logs"

# step NAME COMMAND...: runs COMMAND, its output to $logs/NAME.log.
step() {
  local name=$1 log="$logs/$1.log"
  shift
  echo "==> $(date +%H:%M:%S) $name (log: $log)"
  if ! "$@" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    echo "FAILED: $name; see $log. Rerun the script to resume." >&2
    exit 1
  fi
}

workdirs=()
one_shot_workdirs=()
for seed in $SEEDS; do
  workdir=$WORKDIRS/seed$seed
  workdirs+=("$workdir")
  step "lottery_seed$seed" "$PYTHON" -m binaries.lottery --config="$config" \
    --config.seed="$seed" --config.data.dir="$DATA_DIR" \
    "${extra[@]}" --workdir="$workdir"
  for control in random_reinit random_prune; do
    step "${control}_seed$seed" "$PYTHON" -m binaries.controls \
      --workdir="$workdir" --control="$control"
  done
done
for seed in $SEEDS; do
  workdir=$WORKDIRS/oneshot_seed$seed
  one_shot_workdirs+=("$workdir")
  step "oneshot_seed$seed" "$PYTHON" -m binaries.lottery --config="$config" \
    --config.seed="$seed" --config.data.dir="$DATA_DIR" \
    --config.prune.mode=one_shot "${extra[@]}" --workdir="$workdir"
done

tfmot=()
if [[ $TFMOT_VENV != none ]]; then
  if [[ ! -x $TFMOT_VENV/bin/python ]]; then
    # tfmot pins an old absl-py and needs Keras 2: never in the main venv.
    step tfmot_venv bash -c "python3 -m venv '$TFMOT_VENV' && \
      '$TFMOT_VENV/bin/pip' install -e '.[tfmot]'"
  fi
  step tfmot env TF_USE_LEGACY_KERAS=1 "$TFMOT_VENV/bin/python" -m \
    benchmarks.tfmot_baseline --data_dir="$DATA_DIR" \
    --output="$TFMOT_JSON" "${tfmot_flags[@]}"
  tfmot=(--tfmot="$TFMOT_JSON")
fi

join() { local IFS=,; echo "$*"; }
step report "$PYTHON" -m binaries.report --workdirs="$(join "${workdirs[@]}")" \
  --one_shot_workdirs="$(join "${one_shot_workdirs[@]}")" "${tfmot[@]}" \
  --output="$OUTPUT"
echo "Report: $OUTPUT/report.md"
