"""torchrun entry for the distributed tests: the toy kit, one run, results printed by rank 0.

Usage: torchrun --nproc-per-node N tests/ddp_entry.py OUT_DIR METHOD [EXTRA_PLUGIN_ON_RANK]
"""

import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402

import toy_plugin  # noqa: E402
from mona_kit.errors import MonaError  # noqa: E402
from mona_kit.hookspecs import hookimpl  # noqa: E402
from mona_kit.kit import load_kit  # noqa: E402
from mona_kit.runconfig import RunConfig  # noqa: E402
from mona_kit.runner import run  # noqa: E402

torch.set_num_threads(1)


def main() -> int:
    out, method = sys.argv[1], sys.argv[2]
    odd_rank = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    import os

    extra = [toy_plugin]
    if int(os.environ.get("RANK", "0")) == odd_rank:
        odd = types.ModuleType("odd_plugin")
        odd.register_metrics = hookimpl(lambda register: register("odd-metric", lambda: None))
        extra.append(odd)
    kit = load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=extra)
    opts = {"name": method}
    if method.startswith("mona"):
        opts.update(objective="toy-align-uniform", meta_steps=4, source_batch_size=8)
    cfg = RunConfig.from_dict({
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text", "method": opts,
        "train": {"epochs": 2, "batch_size": 16}, "output_dir": out, "run_name": method, "checkpoint_every": 2,
    })
    try:
        run(kit, cfg, progress=False, overwrite=True)
    except MonaError as exc:
        print(f"mona-kit: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
