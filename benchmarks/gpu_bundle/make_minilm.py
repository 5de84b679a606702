"""Write randomly initialised all-MiniLM-L6-v2 weights (same architecture, config and tokenizer) into FOLDER.

The real 91 MB checkpoint does not fit the device transfer (64 MiB), so the GPU check times and runs
the real architecture on random weights; its few-step metrics mean nothing either way.
"""
import sys

import torch
from transformers import BertConfig, BertModel

folder = sys.argv[1]
torch.manual_seed(0)
model = BertModel(BertConfig.from_pretrained(folder), add_pooling_layer=True)
model.save_pretrained(folder)
print(f"random MiniLM-L6 weights: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params in {folder}")
