#!/bin/bash
# One robust eval grid over a Slurm cluster: a job array runs one shard of the grid per task, all
# writing into one folder on the shared file system, and a job that starts once they all succeeded
# merges them.
#
#   bash examples/slurm-array.sh            # from the repository (npm ci done), on the login node: submits both
#   bash examples/slurm-array.sh merge      # merge by hand (e.g. after resubmitting a failed task)
#
# The data set must be in $ROBUST_DATA_DIR on the shared file system first (robust data cifar10).
# A task that fails or is preempted resumes at the batch it was in when it runs again
# (--requeue, or: sbatch --array=3 examples/slurm-array.sh shard).
#SBATCH --job-name=robust-eval
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --requeue
set -euo pipefail

SHARDS=${SHARDS:-8}
OUT=${OUT:-$PWD/results/autoattack}
# how to start robust on the nodes: this checkout, or e.g. "apptainer exec robust.sif node /opt/robust/bin/robust.js"
ROBUST=${ROBUST:-"node $PWD/bin/robust.js"}
GRID=(--models zoo:resnet20-pgd --preset autoattack --eps 8/255 --limit 10000 --data cifar10)

case "${1:-submit}" in
  submit)
    # the jobs inherit this environment (OUT, ROBUST, ROBUST_DATA_DIR) and start in this folder
    array=$(sbatch --parsable --array="0-$((SHARDS - 1))" "$0" shard)
    sbatch --dependency="afterok:${array%%;*}" --job-name=robust-merge --cpus-per-task=1 --mem=2G --time=1:00:00 "$0" merge
    ;;
  # --shard auto: task SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT
  shard) exec $ROBUST eval "${GRID[@]}" --threads "${SLURM_CPUS_PER_TASK:-1}" --out "$OUT" --shard auto ;;
  merge) exec $ROBUST merge "$OUT" ;;
  *) echo "usage: bash $0 [submit|shard|merge]" >&2; exit 2 ;;
esac
