"""Overhead of mona-kit's assembly: CrossModalModel(seq1d-conv -> minilm-l6 -> classification)
versus the same work written directly against the raw transformers modules.

Forward + backward, batch 8, 64 tokens. Target: ratio <= 1.05. Run with
``pytest benchmarks/bench_assembly.py --benchmark-only -p no:cacheprovider``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _timing import interleaved_times, ratio_info

from mona_kit.components import TaskSpec
from mona_kit.kit import load_kit
from mona_kit.model import CrossModalModel

BATCH, CHANNELS, LENGTH, CLASSES = 8, 4, 256, 10  # stride 4 -> 64 tokens


class RawModel(nn.Module):
    """Conv1d + LayerNorm + positions, BertModel's encoder, mean-pool + Linear: no mona-kit code."""

    def __init__(self, folder):
        super().__init__()
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(str(folder), local_files_only=True)
        width = bert.config.hidden_size
        self.proj = nn.Conv1d(CHANNELS, width, kernel_size=4, stride=4)
        self.norm = nn.LayerNorm(width)
        self.positions = nn.Parameter(bert.embeddings.position_embeddings.weight[:64].detach().clone())
        self.encoder = bert.encoder
        self.fc = nn.Linear(width, CLASSES)

    def forward(self, x):
        tokens = self.norm(self.proj(x).transpose(1, 2)) + self.positions
        return self.fc(self.encoder(tokens).last_hidden_state.mean(1))


def _models():
    kit = load_kit(builtins=["mona_plugins.backbones", "mona_plugins.embedders"], entry_points=False)
    task = TaskSpec(
        name="bench", task_type="classification", input_shape=(CHANNELS, LENGTH), output_shape=(CLASSES,),
        loss="cross-entropy", metric="accuracy",
    )
    body = kit.backbones.get("minilm-l6").build({"max_tokens": 64})
    emb = kit.embedders.get("seq1d-conv").build({}, task=task, body=body)
    assert emb.num_tokens == 64
    head = kit.heads.get("classification").build({}, task=task, body=body, embedder=emb)
    from mona_plugins.backbones.hf import minilm_folder

    return CrossModalModel(emb, body, head).train(), RawModel(minilm_folder()).train()


def _step(model, x, y):
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kit_model, raw_model = _models()
    x, y = torch.randn(BATCH, CHANNELS, LENGTH), torch.randint(0, CLASSES, (BATCH,))
    return kit_model, raw_model, x, y


def test_assembly_vs_raw_transformers(benchmark, setup):
    kit_model, raw_model, x, y = setup
    times = interleaved_times({"kit": lambda: _step(kit_model, x, y), "raw": lambda: _step(raw_model, x, y)}, rounds=20, warmup=3)
    info = ratio_info(times, "kit", "raw")
    benchmark.extra_info.update(info, batch=BATCH, tokens=64, backbone="minilm-l6")
    print(f"\nassembly/raw forward+backward ratio: {info['ratio']:.3f} (min; median {info['median_ratio']:.3f})")
    benchmark.pedantic(_step, args=(kit_model, x, y), rounds=5, iterations=1)


def test_raw_transformers_step(benchmark, setup):
    _, raw_model, x, y = setup
    benchmark.pedantic(_step, args=(raw_model, x, y), rounds=5, iterations=1, warmup_rounds=1)
