#!/bin/bash
# The last rounds of a paper IMP run, side by side on the dense kernels
# and on the sparse compute paths (train.sparse_compute=off vs auto).
#
#   SOURCE=workdirs/early/imp/seed0 SEED=0 WORKDIRS=workdirs/sparse_rounds \
#       bash benchmarks/sparse_rounds.sh
#
# Copies rounds 0 to FROM-1 (default 15) of SOURCE, a finished or running
# `binaries.lottery` run of configs/lenet300_mnist.py with
# eval.test_at=best and export off (the early study's IMP arm), into
# WORKDIRS/off_seed$SEED and WORKDIRS/auto_seed$SEED, then trains rounds
# FROM to 18 in both at once, one thread each. Compare with
#   python -m benchmarks.same_numbers --runs=WORKDIRS/off_seed0,...
# and each round's train_seconds/eval_seconds/compute_path in
# round_RR/metrics.json. Rerunning resumes.
set -euo pipefail
: "${SOURCE:?set SOURCE to an IMP workdir}" "${SEED:?set SEED to its seed}"
WORKDIRS=${WORKDIRS:-workdirs/sparse_rounds}
FROM=${FROM:-15}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
for mode in off auto; do
  python -c "import sys; from keras_lottery.base import files; \
files.copy_rounds(sys.argv[1], sys.argv[2], range(int(sys.argv[3])))" \
    "$SOURCE" "$WORKDIRS/${mode}_seed$SEED" "$FROM"
done
pids=()
for mode in off auto; do
  python -m binaries.lottery --config=configs/lenet300_mnist.py \
    --config.data.dir="$DATA_DIR" --config.seed="$SEED" \
    --config.eval.test_at=best --config.export.enabled=false \
    --config.prune.num_rounds=18 --config.train.sparse_compute=$mode \
    --workdir="$WORKDIRS/${mode}_seed$SEED" \
    > "$WORKDIRS/${mode}_seed$SEED.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if (( status )); then
  echo "A run failed; see $WORKDIRS/*_seed$SEED.log. Rerun to resume." >&2
  exit 1
fi
echo "done: $WORKDIRS/off_seed$SEED $WORKDIRS/auto_seed$SEED"
