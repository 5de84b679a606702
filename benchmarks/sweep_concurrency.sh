#!/usr/bin/env bash
# Issue 15, item 5: is a sweep faster with two cells at once (one thread each) or one cell at a time
# with two threads? A = two darcy-16 fine-tuning cells (MiniLM-L6, 100 steps, batch 16) at once with
# threads=1; B = the same two cells one after the other with threads=2. A and B alternate REPS times,
# so that a changing background load falls on both. Prints the wall time of each, and load1 before it.
# Usage: bash benchmarks/sweep_concurrency.sh [OUT_DIR] [REPS]     (run from the repository root)
set -u
out="${1:-/tmp/mona-sweep-concurrency}"
reps="${2:-3}"
mk="${MONA_KIT:-.venv/bin/mona-kit}"
mkdir -p "$out"
cat > "$out/cell.yaml" <<YAML
task: darcy-16
backbone: {name: minilm-l6, max_tokens: 32}
embedder: {name: grid2d-patch, patch: 4}
method: finetune
train: {batch_size: 16, max_steps: 100, epochs: 60, evals_per_epoch: 1}
diagnostics: {reuse_every: 0}
output_dir: $out/runs
YAML
cell() { "$mk" run "$out/cell.yaml" seed="$1" threads="$2" run_name="$3" --no-progress --no-plots --overwrite > "$out/$3.log" 2>&1; }
for rep in $(seq "$reps"); do
  l=$(cut -d' ' -f1 /proc/loadavg); t0=$(date +%s.%N); cell 0 1 A0-$rep & cell 1 1 A1-$rep & wait; t1=$(date +%s.%N)
  echo "rep$rep A (2 at once, 1 thread each): $(echo "$t1 - $t0" | bc) s  load1 before: $l"
  l=$(cut -d' ' -f1 /proc/loadavg); t0=$(date +%s.%N); cell 0 2 B0-$rep; cell 1 2 B1-$rep; t1=$(date +%s.%N)
  echo "rep$rep B (in turn, 2 threads each): $(echo "$t1 - $t0" | bc) s  load1 before: $l"
done
