#!/usr/bin/env bash
# Ticket transfer (issue 15, item 4), end to end:
#
#   1. MNIST-1D: for each seed, the notebook's lottery run
#      (configs/mnist1d_lottery_mlp.py) on the official MNIST-1D (generation
#      seed 42) to round ROUND, then `binaries.transfer` of its round-ROUND
#      masks to a freshly generated MNIST-1D (generation seed GEN_SEED):
#      the transferred ticket (source's rewind point), a random mask of the
#      same per-layer sparsity, the dense network, and the target's own
#      ticket (its own lottery run to round ROUND);
#   2. only with MNIST=1: the same from MNIST digits 0-4 to digits 5-9
#      (configs/lenet300_mnist.py, data.classes), with rounds shortened to
#      MNIST_STEPS steps (the paper trains 50,000);
#   3. the table of both studies: OUTPUT/transfer.md.
#
# Usage, from anywhere:
#
#   bash benchmarks/reproduce_transfer.sh            # the real thing
#   bash benchmarks/reproduce_transfer.sh --smoke    # the pipeline in minutes
#
# Rerunning resumes: the binaries skip finished rounds and continue an
# unfinished one from its checkpoint. Each step's output goes to
# WORKDIRS/logs/STEP.log.
#
# Environment (defaults in brackets):
#   PYTHON       the project's Python, keras_lottery installed [python]
#   SEEDS        seeds [0 1 2; smoke: 0]
#   ROUND        the round whose masks transfer [11: 8.6% of the weights
#                left, 91.4% sparsity; smoke: 2]
#   GEN_SEED     the target MNIST-1D's generation seed [1]
#   INIT         rewind (the source's rewind point) or fresh [rewind]
#   MNIST        1 runs the MNIST 0-4 -> 5-9 study too [0]
#   MNIST_DIR    the MNIST IDX files [../shared/data/mnist]
#   MNIST_STEPS  training steps per MNIST round [2000]
#   JOBS         chains running at once [one per seed]
#   THREADS      CPU threads per process [cores / JOBS, at least 1]
#   WORKDIRS     where the runs go [workdirs/transfer; smoke:
#                workdirs/transfer_smoke]
#   OUTPUT       the table's folder [WORKDIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/steps.sh
parse_smoke "$@"

PYTHON=${PYTHON:-python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Early stop's test accuracy is kept; no export: the tables need neither.
extra=(--config.export.enabled=false --config.eval.test_at=best)
GEN_SEED=${GEN_SEED:-1}
INIT=${INIT:-rewind}
MNIST=${MNIST:-0}
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
MNIST_STEPS=${MNIST_STEPS:-2000}
if $smoke; then
  SEEDS=${SEEDS:-0}
  ROUND=${ROUND:-2}
  WORKDIRS=${WORKDIRS:-workdirs/transfer_smoke}
  variant=:smoke
  mnist_steps=()
else
  SEEDS=${SEEDS:-0 1 2}
  ROUND=${ROUND:-11}
  WORKDIRS=${WORKDIRS:-workdirs/transfer}
  variant=
  # The paper's eval and checkpoint intervals, scaled to the short rounds.
  mnist_steps=(--config.train.num_steps="$MNIST_STEPS"
    --config.eval.every_steps=100
    --config.train.checkpoint_every_steps="$MNIST_STEPS")
fi
OUTPUT=${OUTPUT:-$WORKDIRS}
JOBS=${JOBS:-$(echo $SEEDS | wc -w)}
set_threads
logs=$WORKDIRS/logs
mkdir -p "$logs"
echo "seeds: $SEEDS; round $ROUND; init $INIT; MNIST study: $MNIST;" \
  "$JOBS at a time, $THREADS threads each"

# chain SEED: everything one seed needs, in order.
chain() {
  local seed=$1 source=$WORKDIRS/mnist1d_source_seed$1
  step "mnist1d_source_seed$seed" "$PYTHON" -m binaries.lottery \
    --config="configs/mnist1d_lottery_mlp.py$variant" \
    --config.seed="$seed" --config.prune.num_rounds="$ROUND" \
    "${extra[@]}" --workdir="$source" || return 1
  step "mnist1d_transfer_seed$seed" "$PYTHON" -m binaries.transfer \
    --source="$source" --round="$ROUND" --init="$INIT" \
    --config="configs/mnist1d_lottery_mlp.py$variant" \
    --config.seed="$seed" --config.data.generation_seed="$GEN_SEED" \
    "${extra[@]}" --workdir="$WORKDIRS/mnist1d_transfer_seed$seed" \
    || return 1
  [[ $MNIST == 1 ]] || return 0
  source=$WORKDIRS/mnist04_source_seed$seed
  step "mnist04_source_seed$seed" "$PYTHON" -m binaries.lottery \
    --config="configs/lenet300_mnist.py$variant" \
    --config.data.dir="$MNIST_DIR" --config.seed="$seed" \
    --config.data.classes="(0, 1, 2, 3, 4)" "${mnist_steps[@]}" \
    --config.prune.num_rounds="$ROUND" "${extra[@]}" \
    --workdir="$source" || return 1
  step "mnist59_transfer_seed$seed" "$PYTHON" -m binaries.transfer \
    --source="$source" --round="$ROUND" --init="$INIT" \
    --config="configs/lenet300_mnist.py$variant" \
    --config.data.dir="$MNIST_DIR" --config.seed="$seed" \
    --config.data.classes="(5, 6, 7, 8, 9)" "${mnist_steps[@]}" \
    "${extra[@]}" --workdir="$WORKDIRS/mnist59_transfer_seed$seed" \
    || return 1
}

for seed in $SEEDS; do
  run "seed$seed" chain "$seed"
done
wait
check_failed

step table "$PYTHON" -m benchmarks.transfer_table --workdirs="$WORKDIRS" \
  --output="$OUTPUT/transfer.md"
echo "Table: $OUTPUT/transfer.md"
