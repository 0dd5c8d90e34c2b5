#!/usr/bin/env bash
# Frankle & Carbin's LeNet-300-100 experiment (issue 4), end to end:
#
#   1. for each seed: the lottery run (iterative pruning, rounds 0 to 18 of
#      50,000 iterations each); the one-shot run, pruned straight from that
#      run's dense round 0 to the sparsities of rounds 3, 7, 12, 15, 18;
#      both controls (random reinit, random prune) at those rounds;
#   2. the tfmot gradual-pruning baseline, in its own virtualenv (Keras 2);
#   3. the report: tables and plots in docs/results.
#
# The seeds' chains and the baseline run side by side, JOBS at a time, each
# process on THREADS CPU threads: LeNet-300-100 at batch 60 keeps one core
# busy but gains little from a second, so on a small machine several
# one-thread processes finish sooner than one after another (on 2 cores,
# two processes ran at 420 steps/s each and four at about 180).
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
#   ROUNDS       rounds of the controls and one-shot runs [3 7 12 15 18;
#                smoke: 2 3]
#   JOBS         chains running at once [all: one per seed, + the baseline]
#   THREADS      CPU threads per process [cores / JOBS, at least 1]
#   WORKDIRS     where the runs go [workdirs/lenet300; smoke: workdirs/smoke]
#   OUTPUT       the report's folder [docs/results; smoke: WORKDIRS/report]
#   TFMOT_VENV   the baseline's virtualenv, created if missing
#                [workdirs/tfmot_venv]; TFMOT_VENV=none skips the baseline
#   TFMOT_JSON   the baseline's results [benchmarks/results/tfmot.json;
#                smoke: WORKDIRS/tfmot.json]
#   TFMOT_SEEDS  the baseline's seeds [SEEDS]; a rerun with more seeds
#                adds their runs to TFMOT_JSON
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
# The test set only where the validation loss reaches a new minimum, and at
# the end: the same early-stop and final accuracies as testing at every
# evaluation, for a third of the evaluation compute.
extra=(--config.eval.test_at=best)
if $smoke; then
  SEEDS=${SEEDS:-0 1}
  ROUNDS=${ROUNDS:-2 3}
  WORKDIRS=${WORKDIRS:-workdirs/smoke}
  OUTPUT=${OUTPUT:-$WORKDIRS/report}
  TFMOT_JSON=${TFMOT_JSON:-$WORKDIRS/tfmot.json}
  config=configs/lenet300_mnist.py:smoke
  # One smoke round: 300 iterations; 1 - remaining at its rounds 1, 2, 3.
  tfmot_flags=(--steps=300 --seeds=0 --sparsities=0.1996,0.3593,0.4872)
  extra+=(--config.export.enabled=false)
else
  SEEDS=${SEEDS:-0 1 2}
  ROUNDS=${ROUNDS:-3 7 12 15 18}
  WORKDIRS=${WORKDIRS:-workdirs/lenet300}
  OUTPUT=${OUTPUT:-docs/results}
  TFMOT_JSON=${TFMOT_JSON:-benchmarks/results/tfmot.json}
  config=configs/lenet300_mnist.py
  TFMOT_SEEDS=${TFMOT_SEEDS:-$SEEDS}
  tfmot_flags=(--steps=50000 "--seeds=$(echo $TFMOT_SEEDS | tr ' ' ,)")
fi
chains=$(echo $SEEDS | wc -w)
[[ $TFMOT_VENV != none ]] && chains=$((chains + 1))
JOBS=${JOBS:-$chains}
THREADS=${THREADS:-$(( $(nproc) / JOBS > 1 ? $(nproc) / JOBS : 1 ))}
export TF_NUM_INTRAOP_THREADS=$THREADS TF_NUM_INTEROP_THREADS=$THREADS \
  OMP_NUM_THREADS=$THREADS
logs=$WORKDIRS/logs
mkdir -p "$logs"
rounds=$(echo $ROUNDS | tr ' ' ,)
echo "seeds: $SEEDS; rounds of controls and one-shot: $rounds;" \
  "$JOBS at a time, $THREADS threads each"

source benchmarks/steps.sh

# chain SEED: everything one seed needs, in order.
chain() {
  local seed=$1 workdir=$WORKDIRS/seed$1 one_shot=$WORKDIRS/oneshot_seed$1
  step "lottery_seed$seed" "$PYTHON" -m binaries.lottery --config="$config" \
    --config.seed="$seed" --config.data.dir="$DATA_DIR" "${extra[@]}" \
    --workdir="$workdir" || return 1
  # One-shot prunes the dense weights of this very run: its round 0 is the
  # lottery run's, copied (atomically, by one rename) rather than retrained.
  if [[ ! -d $one_shot/round_00 ]]; then
    mkdir -p "$one_shot"
    rm -rf "$one_shot/.round_00.copy"
    cp -r "$workdir/round_00" "$one_shot/.round_00.copy"
    mv "$one_shot/.round_00.copy" "$one_shot/round_00"
  fi
  step "oneshot_seed$seed" "$PYTHON" -m binaries.lottery --config="$config" \
    --config.seed="$seed" --config.data.dir="$DATA_DIR" "${extra[@]}" \
    --config.prune.mode=one_shot \
    "--config.prune.one_shot_rounds=($rounds,)" --workdir="$one_shot" \
    || return 1
  for control in random_reinit random_prune; do
    step "${control}_seed$seed" "$PYTHON" -m binaries.controls \
      --workdir="$workdir" --control="$control" --rounds="$rounds" \
      || return 1
  done
}

baseline() {
  if [[ ! -x $TFMOT_VENV/bin/python ]]; then
    # tfmot pins an old absl-py and needs Keras 2: never in the main venv.
    step tfmot_venv bash -c "python3 -m venv '$TFMOT_VENV' && \
      '$TFMOT_VENV/bin/pip' install -e '.[tfmot]'" || return 1
  fi
  step tfmot env TF_USE_LEGACY_KERAS=1 "$TFMOT_VENV/bin/python" -m \
    benchmarks.tfmot_baseline --data_dir="$DATA_DIR" \
    --output="$TFMOT_JSON" "${tfmot_flags[@]}"
}

for seed in $SEEDS; do
  run "seed$seed" chain "$seed"
done
tfmot=()
if [[ $TFMOT_VENV != none ]]; then
  run baseline baseline
  tfmot=(--tfmot="$TFMOT_JSON")
fi
wait
check_failed

workdirs=() one_shot_workdirs=()
for seed in $SEEDS; do
  workdirs+=("$WORKDIRS/seed$seed")
  one_shot_workdirs+=("$WORKDIRS/oneshot_seed$seed")
done
join() { local IFS=,; echo "$*"; }
step report "$PYTHON" -m binaries.report --workdirs="$(join "${workdirs[@]}")" \
  --one_shot_workdirs="$(join "${one_shot_workdirs[@]}")" "${tfmot[@]}" \
  --output="$OUTPUT"
echo "Report: $OUTPUT/report.md"
