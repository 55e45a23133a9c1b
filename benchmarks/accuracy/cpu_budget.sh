#!/usr/bin/env bash
# The CPU accuracy benchmark: the same narrow ResNet-18 (width 16, CIFAR stem)
# trained for the same wall-clock budget by our recipe and by lightly's CIFAR-10 benchmark recipe,
# both evaluated with the same k-NN (k=200, T=0.1, cosine) on the full CIFAR-10 test split.
# The two runs share the machine's two cores, one each (one thread per run, run side by side),
# so neither gets more hardware than the other.
#   bash benchmarks/accuracy/cpu_budget.sh [MINUTES [OUT [SEED]]]
# MINUTES defaults to 30, OUT to benchmarks/results/<today>-cifar10-cpu-<MINUTES>min, SEED to 0
# (both sides' initialisation and data order: repeats of the protocol differ only in SEED).
set -euo pipefail
minutes=${1:-30}
out=${2:-benchmarks/results/$(date -u +%F)-cifar10-cpu-${minutes}min}
seed=${3:-0}
cache=${BYOL_BENCH_CACHE:-$HOME/.cache/byol}
mkdir -p "$out"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m benchmarks.accuracy.run --preset cifar10 --minutes "$minutes" --out "$out/ours" \
  --set model.backbone=small_resnet18_w16 "data.cache_dir=$cache" data.num_workers=1 \
  train.log_every_steps=20 train.checkpoint_every_epochs=1 "train.seed=$seed" \
  > "$out/ours.log" 2>&1 &
ours=$!
python -m benchmarks.accuracy.lightly_budget --minutes "$minutes" --backbone small_resnet18_w16 \
  --workers 1 --cache-dir "$cache" --out "$out" --seed "$seed" > "$out/lightly.log" 2>&1 &
lightly=$!
wait $ours $lightly
