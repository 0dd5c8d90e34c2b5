#!/usr/bin/env bash
# MNIST-1D (issue 15), end to end:
#
#   1. for each seed: the lottery run of the notebook's 40-500-500-10
#      residual MLP (configs/mnist1d_lottery_mlp.py, rounds 0 to 10), then
#      both controls (random prune: the notebook's random mask; random
#      reinit) at ROUNDS;
#   2. for each seed: the dense paper MLP and CNN (configs/mnist1d_mlp.py,
#      configs/mnist1d_cnn.py with prune.num_rounds=0), to check against
#      the 68% and 94% of Greydanus's README;
#   3. for each seed: the lottery run again with 10% pruned per round
#      (rounds 0 to 22, also to 90% sparsity: closer to the notebook's
#      1%-of-the-layer steps), and the random-prune control at ROUNDS_FINE;
#   4. the reports of both schedules: tables and plots in OUTPUT and
#      OUTPUT/fine.
#
# The seeds run side by side, JOBS at a time, each process on THREADS CPU
# threads (see benchmarks/reproduce_lenet300.sh). MNIST-1D is generated in
# each process (a few seconds): nothing is read or downloaded.
#
# Usage, from anywhere:
#
#   bash benchmarks/reproduce_mnist1d.sh            # the real thing
#   bash benchmarks/reproduce_mnist1d.sh --smoke    # the pipeline in minutes
#
# Rerunning resumes: the binaries skip finished rounds and continue an
# unfinished one from its checkpoint; the report is redrawn from whatever
# has finished. Each step's output goes to WORKDIRS/logs/STEP.log.
#
# Environment (defaults in brackets):
#   PYTHON    the project's Python, keras_lottery installed [python]
#   SEEDS     seeds [0 1 2; smoke: 0 1]
#   ROUNDS    rounds of the controls [2 4 6 8 10; smoke: 1 2]
#   ROUNDS_FINE  rounds of the 10%-per-round run's control [7 13 18 22;
#             smoke: 2 3]
#   JOBS      chains running at once [one per seed]
#   THREADS   CPU threads per process [cores / JOBS, at least 1]
#   WORKDIRS  where the runs go [workdirs/mnist1d; smoke:
#             workdirs/mnist1d_smoke]
#   OUTPUT    the report's folder [docs/results_mnist1d; smoke:
#             WORKDIRS/report]
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
case "${1:-}" in
  --smoke) smoke=true ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
extra=(--config.eval.test_at=best --config.export.enabled=false)
if $smoke; then
  SEEDS=${SEEDS:-0 1}
  ROUNDS=${ROUNDS:-1 2}
  ROUNDS_FINE=${ROUNDS_FINE:-2 3}
  fine_rounds=3
  WORKDIRS=${WORKDIRS:-workdirs/mnist1d_smoke}
  OUTPUT=${OUTPUT:-$WORKDIRS/report}
  variant=:smoke
else
  SEEDS=${SEEDS:-0 1 2}
  ROUNDS=${ROUNDS:-2 4 6 8 10}
  ROUNDS_FINE=${ROUNDS_FINE:-7 13 18 22}
  fine_rounds=22
  WORKDIRS=${WORKDIRS:-workdirs/mnist1d}
  OUTPUT=${OUTPUT:-docs/results_mnist1d}
  variant=
fi
JOBS=${JOBS:-$(echo $SEEDS | wc -w)}
THREADS=${THREADS:-$(( $(nproc) / JOBS > 1 ? $(nproc) / JOBS : 1 ))}
export TF_NUM_INTRAOP_THREADS=$THREADS TF_NUM_INTEROP_THREADS=$THREADS \
  OMP_NUM_THREADS=$THREADS
logs=$WORKDIRS/logs
mkdir -p "$logs"
rounds=$(echo $ROUNDS | tr ' ' ,)
echo "seeds: $SEEDS; rounds of the controls: $rounds;" \
  "$JOBS at a time, $THREADS threads each"

source benchmarks/steps.sh

# chain SEED: everything one seed needs, in order.
chain() {
  local seed=$1 workdir=$WORKDIRS/lottery_mlp_seed$1
  step "lottery_mlp_seed$seed" "$PYTHON" -m binaries.lottery \
    --config="configs/mnist1d_lottery_mlp.py$variant" \
    --config.seed="$seed" "${extra[@]}" --workdir="$workdir" || return 1
  for control in random_prune random_reinit; do
    step "${control}_seed$seed" "$PYTHON" -m binaries.controls \
      --workdir="$workdir" --control="$control" --rounds="$rounds" \
      || return 1
  done
  for model in mlp cnn; do
    step "dense_${model}_seed$seed" "$PYTHON" -m binaries.lottery \
      --config="configs/mnist1d_$model.py$variant" --config.seed="$seed" \
      --config.prune.num_rounds=0 "${extra[@]}" \
      --workdir="$WORKDIRS/dense_${model}_seed$seed" || return 1
  done
  local fine=$WORKDIRS/lottery_mlp_fine_seed$seed
  step "lottery_mlp_fine_seed$seed" "$PYTHON" -m binaries.lottery \
    --config="configs/mnist1d_lottery_mlp.py$variant" \
    --config.seed="$seed" "${extra[@]}" \
    --config.prune.fraction_per_round=0.1 \
    --config.prune.output_fraction_per_round=0.1 \
    --config.prune.num_rounds="$fine_rounds" --workdir="$fine" || return 1
  step "random_prune_fine_seed$seed" "$PYTHON" -m binaries.controls \
    --workdir="$fine" --control=random_prune \
    --rounds="$(echo $ROUNDS_FINE | tr ' ' ,)" || return 1
}

for seed in $SEEDS; do
  run "seed$seed" chain "$seed"
done
wait
check_failed

workdirs=() fine_workdirs=()
for seed in $SEEDS; do
  workdirs+=("$WORKDIRS/lottery_mlp_seed$seed")
  fine_workdirs+=("$WORKDIRS/lottery_mlp_fine_seed$seed")
done
join() { local IFS=,; echo "$*"; }
step report "$PYTHON" -m binaries.report --workdirs="$(join "${workdirs[@]}")" \
  --output="$OUTPUT"
step report_fine "$PYTHON" -m binaries.report \
  --workdirs="$(join "${fine_workdirs[@]}")" --output="$OUTPUT/fine"
echo "Reports: $OUTPUT/report.md, $OUTPUT/fine/report.md"
