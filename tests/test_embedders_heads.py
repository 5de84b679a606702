"""Embedders and heads: contract checks over the registries, shapes, defaults, bad input, short training."""

from __future__ import annotations

import pytest
import torch

from mona_kit.components import TaskSpec
from mona_kit.engine import pick_auto
from mona_kit.errors import ConfigError, ShapeError
from mona_kit.kit import load_kit
from mona_kit.model import CrossModalModel
from mona_kit.testing import check_embedder, check_head

TINY = ["tiny-bert", "tiny-vit", "tiny-cnn"]


def spec(name, task_type, input_shape, output_shape) -> TaskSpec:
    return TaskSpec(name=name, task_type=task_type, input_shape=input_shape, output_shape=output_shape, loss="mse", metric="mse")


#: Tiny generated tasks covering every input rank and task type.
TASKS = {
    "seq-cls": spec("seq-cls", "classification", (3, 50), (4,)),
    "seq-multilabel": spec("seq-multilabel", "multilabel", (2, 37), (5,)),
    "seq-dense": spec("seq-dense", "dense1d", (1, 48), (2, 48)),
    "grid-dense": spec("grid-dense", "dense2d", (1, 12, 12), (1, 12, 12)),
    "grid-cls": spec("grid-cls", "classification", (4, 20, 17), (3,)),
    "grid-regression": spec("grid-regression", "regression", (2, 9, 9), (2,)),
    "table-regression": spec("table-regression", "regression", (70,), (1,)),
}


#: One kit for the whole module: parametrisation reads its registries at collection time.
KIT = load_kit(builtins=["mona_plugins.backbones", "mona_plugins.embedders"], entry_points=False)


@pytest.fixture(scope="module")
def kit():
    return KIT


@pytest.fixture(scope="module")
def bodies(kit):
    return {name: kit.backbones.get(name).build({}) for name in TINY}


def _cases(kit):
    """Every (embedder, tiny body, task) the embedder's metadata says it handles."""
    out = []
    for entry in kit.embedders:
        for body in TINY:
            family = kit.backbones.get(body).meta["family"]
            for task in TASKS.values():
                if len(task.input_shape) in entry.meta["input_ranks"] and family in entry.meta["body_families"]:
                    out.append((entry.name, body, task.name))
    return out


CASES = _cases(KIT)


def test_every_embedder_and_head_is_registered_with_auto_meta(kit):
    assert set(kit.embedders.names()) >= {"seq1d-conv", "grid2d-patch", "cnn-stem", "tabular"}
    assert set(kit.heads.names()) >= {"classification", "multilabel", "regression", "dense-1d", "dense-2d"}
    assert {e for e, _, _ in CASES} == {"seq1d-conv", "grid2d-patch", "cnn-stem", "tabular"}


@pytest.mark.parametrize("embedder,body,task", CASES)
def test_embedder_contract(kit, bodies, embedder, body, task):
    emb = kit.embedders.get(embedder).build({}, task=TASKS[task], body=bodies[body])
    check_embedder(emb, TASKS[task], bodies[body])


@pytest.mark.parametrize("head", ["classification", "multilabel", "regression", "dense-1d", "dense-2d"])
@pytest.mark.parametrize("body", TINY)
def test_head_contract(kit, bodies, head, body):
    types = kit.heads.get(head).meta["task_types"]
    family = bodies[body].family
    # Feature vectors have no CNN embedder; every other task type meets every body.
    tasks = [t for t in TASKS.values() if t.task_type in types and (family != "cnn" or len(t.input_shape) > 1)]
    assert tasks
    for task in tasks:
        embedder_name = pick_auto(kit, "embedders", input_rank=len(task.input_shape), body_family=family)
        emb = kit.embedders.get(embedder_name).build({}, task=task, body=bodies[body])
        check_head(kit.heads.get(head).build({}, task=task, body=bodies[body], embedder=emb), task, bodies[body], emb)


def test_seq1d_stride_is_smallest_divisor_within_budget(kit, bodies):
    emb = kit.embedders.get("seq1d-conv").build({"max_tokens": 16}, task=TASKS["seq-cls"], body=bodies["tiny-bert"])
    assert emb.geometry == {"kind": "seq", "length": 50, "stride": 5} and emb.num_tokens == 10
    assert torch.equal(emb.positions.detach(), bodies["tiny-bert"].position_embeddings()[:10])


def test_grid2d_patch_starts_from_tiled_pretrained_projection(kit, bodies):
    vit = bodies["tiny-vit"]
    task = spec("rgb4", "classification", (4, 32, 32), (2,))
    emb = kit.embedders.get("grid2d-patch").build({}, task=task, body=vit)
    w = vit.patch_projection()
    assert emb.geometry["grid"] == (4, 4) and emb.geometry["patch"] == 8
    assert torch.allclose(emb.proj.weight, w[:, [0, 1, 2, 0]] * 3 / 4)
    random = kit.embedders.get("grid2d-patch").build({"init": "random"}, task=task, body=vit)
    assert not torch.allclose(random.proj.weight, emb.proj.weight)


def test_grid2d_patch_fits_the_token_budget(kit, bodies):
    task = spec("big", "dense2d", (1, 85, 85), (1, 85, 85))
    emb = kit.embedders.get("grid2d-patch").build({}, task=task, body=bodies["tiny-bert"])
    assert emb.num_tokens <= 64 and emb.geometry["grid"] == (8, 8) and emb.geometry["size"] == (88, 88)


def test_wrong_channel_count_and_length_are_one_line_shape_errors(kit, bodies):
    emb = kit.embedders.get("seq1d-conv").build({}, task=TASKS["seq-cls"], body=bodies["tiny-bert"])
    with pytest.raises(ShapeError) as info:
        emb(torch.randn(2, 4, 50))
    msg = str(info.value)
    assert "embedder 'seq1d-conv'" in msg and "[B, 3, 50]" in msg and "[2, 4, 50]" in msg and "build it" in msg
    with pytest.raises(ShapeError, match=r"\[B, 3, 50\] but got \[2, 3, 49\]"):
        emb(torch.randn(2, 3, 49))
    grid = kit.embedders.get("grid2d-patch").build({}, task=TASKS["grid-dense"], body=bodies["tiny-bert"])
    with pytest.raises(ShapeError, match=r"'grid2d-patch' was built for inputs \[B, 1, 12, 12\] but got \[1, 3, 12, 12\]"):
        grid(torch.randn(1, 3, 12, 12))


def test_rank_mismatch_and_dense2d_without_grid_are_config_errors(kit, bodies):
    with pytest.raises(ConfigError, match="seq1d-conv.*use 'grid2d-patch'"):
        kit.embedders.get("seq1d-conv").build({}, task=TASKS["grid-cls"], body=bodies["tiny-bert"])
    seq = kit.embedders.get("seq1d-conv").build({}, task=TASKS["seq-cls"], body=bodies["tiny-bert"])
    with pytest.raises(ConfigError, match="needs an embedder with a token grid"):
        kit.heads.get("dense-2d").build({}, task=TASKS["grid-dense"], body=bodies["tiny-bert"], embedder=seq)


# Training from names ----------------------------------------------------------------------------
def _seq_task_data(n=64):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (n,), generator=g)
    # Class c < 3 raises channel c; class 3 raises none: separable after pooling, so a few steps learn it.
    offsets = torch.nn.functional.one_hot(y, 4)[:, :3].float()
    return offsets[:, :, None] + 0.5 * torch.randn(n, 3, 50, generator=g), y


def _grid_task_data(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 12, 12, generator=g)
    return x, x.roll(1, dims=-1) * 2 - 1  # a fixed local map


def _train(kit, body_name, embedder, head, task, x, y, loss_fn, steps=30, lr=3e-3):
    torch.manual_seed(0)
    body = kit.backbones.get(body_name).build({})
    emb = kit.embedders.get(embedder).build({}, task=task, body=body)
    model = CrossModalModel(emb, body, kit.heads.get(head).build({}, task=task, body=body, embedder=emb)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        idx = torch.arange(step * 16, step * 16 + 16) % len(x)
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return sum(losses[:3]) / 3, sum(losses[-3:]) / 3


@pytest.mark.parametrize("body", ["tiny-bert", pytest.param("minilm-l6", marks=pytest.mark.slow)])
def test_seq1d_classification_trains_from_names(kit, body):
    x, y = _seq_task_data()
    first, last = _train(kit, body, "seq1d-conv", "classification", TASKS["seq-cls"], x, y, torch.nn.functional.cross_entropy, lr=1e-3 if body == "minilm-l6" else 3e-3)
    assert last < 0.7 * first, (first, last)


@pytest.mark.parametrize("body", ["tiny-bert", pytest.param("minilm-l6", marks=pytest.mark.slow)])
def test_grid2d_dense2d_trains_from_names(kit, body):
    x, y = _grid_task_data()
    first, last = _train(kit, body, "grid2d-patch", "dense-2d", TASKS["grid-dense"], x, y, torch.nn.functional.mse_loss, lr=1e-3 if body == "minilm-l6" else 3e-3)
    assert last < 0.7 * first, (first, last)
