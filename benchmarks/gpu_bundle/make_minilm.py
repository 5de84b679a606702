"""Write all-MiniLM-L6-v2 weights as model.safetensors into FOLDER, for the GPU check.

The real 91 MB fp32 checkpoint does not fit the device transfer (64 MiB), so make_bundle.sh packs it in
fp16 (model.fp16.safetensors, 45 MB, 41 MB in the xz archive): here its floating-point tensors go back
to fp32. Those are the real weights rounded to fp16 (make_bundle.sh prints how far that moves them).
Without that file (a bundle built before it, or `--random`) the weights are random, same architecture.

    python make_minilm.py FOLDER [--random]
"""
import sys
from pathlib import Path

import torch

folder = Path(sys.argv[1])
packed = folder / "model.fp16.safetensors"
if packed.is_file() and "--random" not in sys.argv:
    from safetensors.torch import load_file, save_file

    tensors = {k: v.float() if v.is_floating_point() else v for k, v in load_file(packed).items()}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    count = sum(v.numel() for v in tensors.values() if v.is_floating_point())
    kind = "real, rounded to fp16"
    print(f"MiniLM-L6 weights from {packed.name} ({kind}): {count / 1e6:.1f} M params in {folder}")
else:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig.from_pretrained(folder), add_pooling_layer=True)
    model.save_pretrained(folder)
    kind = "random (same architecture)"
    print(f"random MiniLM-L6 weights: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params in {folder}")
(folder / "WEIGHTS").write_text(kind + "\n")  # run.sh reports it in env.log
