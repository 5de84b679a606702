"""A tiny, self-contained plugin (every component kind) so core tests need no first-party plugin,
no weights and no data files. It also shows the whole plugin API in one page."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.components import Backbone, Embedder, Head, Metric, RepresentationObjective, SourceEmbedder, TaskData, TaskSpec
from mona_kit.config import config, option
from mona_kit.hookspecs import hookimpl

WIDTH = 16


class ToyTextEmbedder(SourceEmbedder):
    modality = "text"

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding

    def prepare(self, dataset, *, max_tokens):
        items = []
        for i in range(len(dataset)):
            sample = dataset[i]
            ids = [ord(c) % 64 for c in sample["text"][:max_tokens]]
            mask = [1] * len(ids) + [0] * (max_tokens - len(ids))
            ids = ids + [0] * (max_tokens - len(ids))
            items.append({"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "y": sample["y"]})
        return items

    def forward(self, batch):
        return self.embedding(batch["input_ids"]), batch["attention_mask"]


class ToyBody(Backbone):
    source_modality = "text"
    family = "transformer"

    def __init__(self, width: int = WIDTH, layers: int = 2):
        super().__init__()
        self.width, self.max_tokens = width, 16
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, 2, dim_feedforward=2 * width, batch_first=True, dropout=0.0) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)
        self._embedding = nn.Embedding(64, width)
        self._positions = torch.randn(self.max_tokens, width) * 0.02

    def forward(self, tokens, mask=None):
        pad = None if mask is None else mask == 0
        for layer in self.layers:
            tokens = layer(tokens, src_key_padding_mask=pad)
        return self.norm(tokens)

    def source_embedder(self):
        import copy

        return ToyTextEmbedder(copy.deepcopy(self._embedding))

    def position_embeddings(self):
        return self._positions

    def named_parameters(self, prefix="", recurse=True, **kw):  # the source embedding is not part of the body
        for n, p in super().named_parameters(prefix=prefix, recurse=recurse, **kw):
            if "_embedding" not in n:
                yield n, p

    def param_groups(self):
        groups = {"attention": [], "mlp": [], "norm": []}
        for n, _ in self.named_parameters():
            if "self_attn" in n:
                groups["attention"].append(n)
            elif "linear" in n:
                groups["mlp"].append(n)
            else:
                groups["norm"].append(n)
        return groups


@config
class ToyBodyConfig:
    pretrained: bool = option(True, help="load the toy 'pretrained' weights (seeded)")
    layers: int = option(2, help="encoder layers")


def make_body(cfg: ToyBodyConfig) -> ToyBody:
    torch.manual_seed(1234 if cfg.pretrained else 99)
    return ToyBody(layers=cfg.layers)


class ToySeqEmbedder(Embedder):
    def __init__(self, task, body):
        super().__init__()
        c, length = task.input_shape
        self.stride = length // body.max_tokens if length > body.max_tokens else 1
        self.num_tokens = length // self.stride
        self.proj = nn.Conv1d(c, body.width, self.stride, self.stride)
        self.norm = nn.LayerNorm(body.width)
        self.geometry = {"kind": "seq", "length": length, "stride": self.stride}

    def forward(self, x):
        return self.norm(self.proj(x).transpose(1, 2))


class ToyClsHead(Head):
    def __init__(self, task, body, embedder):
        super().__init__()
        self.fc = nn.Linear(body.width, task.output_shape[0])

    def forward(self, feats):
        return self.fc(feats.mean(1))


class ToyCE(nn.Module):
    def forward(self, pred, target):
        return F.cross_entropy(pred, target)


class ToyError(Metric):
    higher_is_better = False

    def __call__(self, pred, target):
        return float((pred.argmax(-1) != target).float().mean())


class ToyAlignUniform(RepresentationObjective):
    def forward(self, z, y):
        z = F.normalize(z, dim=-1)
        d = torch.cdist(z, z).pow(2)
        same = (y[:, None] == y[None]) & ~torch.eye(len(y), dtype=torch.bool, device=z.device)
        align = d[same].mean() if same.any() else z.sum() * 0
        off = ~torch.eye(len(y), dtype=torch.bool, device=z.device)
        return align + torch.log(torch.exp(-2 * d[off]).mean())


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@config
class ToySeqConfig:
    n_train: int = option(64, help="training samples")


def make_seq_task(cfg: ToySeqConfig) -> TaskData:
    g = torch.Generator().manual_seed(0)

    def split(n):
        y = torch.randint(0, 3, (n,), generator=g)
        t = torch.linspace(0, 1, 32)
        x = torch.sin(2 * torch.pi * (y[:, None] + 1) * t) + 0.3 * torch.randn(n, 32, generator=g)
        return ListDataset([{"x": x[i : i + 1], "y": y[i]} for i in range(n)])

    spec = TaskSpec(
        name="toy-seq", task_type="classification", input_shape=(1, 32), output_shape=(3,),
        loss="toy-ce", metric="toy-error", modality="toy-signal",
    )
    return TaskData(spec=spec, train=split(cfg.n_train), val=split(32), test=split(32))


def make_field_task() -> TaskData:
    """A dense 1-D task (a shifted field), for the methods that need grid targets (FNO)."""
    g = torch.Generator().manual_seed(3)

    def split(n):
        x = torch.randn(n, 1, 16, generator=g)
        return ListDataset([{"x": x[i], "y": torch.roll(x[i], 3, dims=-1)} for i in range(n)])

    spec = TaskSpec(
        name="shift-field", task_type="dense1d", input_shape=(1, 16), output_shape=(1, 16),
        loss="toy-mse", metric="toy-rel-l2", modality="toy-signal",
    )
    return TaskData(spec=spec, train=split(32), val=split(16), test=split(16))


class ToyMSE(nn.Module):
    def forward(self, pred, target):
        return ((pred - target) ** 2).mean()


class ToyRelL2(Metric):
    def __call__(self, pred, target):
        return float((pred - target).flatten(1).norm(dim=1).div(target.flatten(1).norm(dim=1)).mean())


def make_text_proxy() -> TaskData:
    words = ["alpha beta", "gamma delta", "epsilon zeta"]
    items = [{"text": f"{words[i % 3]} {i}", "y": torch.tensor(i % 3)} for i in range(60)]
    spec = TaskSpec(
        name="toy-text", task_type="classification", input_shape=(16,), output_shape=(3,),
        loss="toy-ce", metric="toy-error", modality="text",
    )
    return TaskData(spec=spec, train=ListDataset(items[:40]), val=ListDataset(items[40:50]), test=ListDataset(items[50:]))


@hookimpl
def register_backbones(register):
    register("toy-body", make_body, config=ToyBodyConfig, summary="toy transformer body", modality="text")


@hookimpl
def register_embedders(register):
    register("toy-seq-embed", lambda task, body: ToySeqEmbedder(task, body), summary="toy conv1d embedder",
             input_ranks=(2,), body_families=("transformer",), default=True)
    register("toy-cls", lambda task, body, embedder: ToyClsHead(task, body, embedder), role="head",
             summary="toy classification head", task_types=("classification",))


@hookimpl
def register_objectives(register):
    register("toy-ce", lambda: ToyCE(), role="task-loss", summary="cross-entropy")
    register("toy-mse", lambda: ToyMSE(), role="task-loss", summary="mean squared error")
    register("toy-align-uniform", lambda: ToyAlignUniform(), role="representation", summary="align + uniform")


@hookimpl
def register_datasets(register):
    register("toy-seq", make_seq_task, config=ToySeqConfig, summary="toy 1-D classification")
    register("toy-text", make_text_proxy, summary="toy text proxy")
    register("shift-field", make_field_task, summary="toy dense 1-D task")


@hookimpl
def register_metrics(register):
    register("toy-error", lambda: ToyError(), summary="0-1 error")
    register("toy-rel-l2", lambda: ToyRelL2(), summary="relative L2 error")
