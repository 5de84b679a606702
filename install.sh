#!/usr/bin/env bash
# Set up mona-kit in a virtual environment: the core, the first-party plugins, and the offline
# pretrained weights and datasets. Usage: bash install.sh [VENV_DIR]   (default: .venv)
set -euo pipefail
cd "$(dirname "$0")"
venv="${1:-${VENV:-.venv}}"
python3 -m venv "$venv"
pip="$venv/bin/pip"
"$pip" install -q --upgrade pip
# torch first and pinned: timm imports torchvision, and a free resolve could pull another CUDA build.
"$pip" install -q torch==2.14.1 torchvision==0.29.1
# The extras resolve under the torch pin: a package asking for another torch fails here instead of replacing it.
printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$venv/torch-pin.txt"
"$pip" install -q -c "$venv/torch-pin.txt" -e ".[data,test,scale,loggers]"
"$pip" install -q --no-deps -r requirements/assets.txt
# The example third-party plugin (a new modality through the entry point); MONA_KIT_PLUGINS=none hides it.
"$pip" install -q --no-deps -e plugins/mona-kit-example
echo "mona-kit installed in $venv: run '$venv/bin/mona-kit run' (or 'source $venv/bin/activate')."
