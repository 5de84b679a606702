"""Contract checks for backbone, embedder and head plugins. A plugin author runs them in their tests::

    from mona_kit.testing import check_backbone, check_embedder, check_head
    body = kit.backbones.get("my-body").build({})
    check_backbone(body)
    embedder = kit.embedders.get("my-embedder").build({}, task=spec, body=body)
    check_embedder(embedder, spec, body)

Each check raises AssertionError naming the component and what broke.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn

from ..components import BODY_GROUPS, Backbone, Embedder, Head, SourceEmbedder, TaskSpec
from ..config import build_config, to_dict
from ..errors import ShapeError

__all__ = ["check_backbone", "check_embedder", "check_head", "check_config_roundtrip", "check_gradients_flow"]


def _fail(what: str, message: str) -> None:
    raise AssertionError(f"{what}: {message}")


def check_config_roundtrip(component: nn.Module, what: str = "component") -> None:
    """If the component keeps its attrs config as ``.config``, it survives to_dict -> build_config."""
    cfg = getattr(component, "config", None)
    if cfg is None or not attrs.has(type(cfg)):
        return
    again = build_config(type(cfg), to_dict(cfg), where=what)
    if again != cfg:
        _fail(what, f"config does not round-trip: {cfg!r} -> {again!r}")


def check_gradients_flow(module: nn.Module, loss: torch.Tensor, what: str) -> None:
    """Backward ``loss``; every trainable parameter of ``module`` must get a finite gradient."""
    module.zero_grad(set_to_none=True)
    loss.backward()
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            _fail(what, f"no gradient reaches trainable parameter {name!r} (unused in forward?)")
        if not torch.isfinite(p.grad).all():
            _fail(what, f"gradient of {name!r} is not finite")
    module.zero_grad(set_to_none=True)


def _random_loss(out: torch.Tensor) -> torch.Tensor:
    # A random projection, not out.sum(): a sum's gradient vanishes through a final LayerNorm.
    g = torch.Generator().manual_seed(0)
    return (out * torch.randn(out.shape, generator=g).to(out)).sum()


def _body_input(body: Backbone, batch: int, tokens: int | None = None) -> torch.Tensor:
    if body.family == "cnn":
        return torch.randn(batch, *body.stem_shape)
    return torch.randn(batch, tokens or min(body.max_tokens, 8), body.width)


def check_param_groups(body: Backbone, what: str) -> None:
    groups = body.param_groups()
    unknown = set(groups) - set(BODY_GROUPS)
    if unknown:
        _fail(what, f"param_groups has unknown groups {sorted(unknown)}; use {BODY_GROUPS}")
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            if name in seen:
                _fail(what, f"parameter {name!r} is in groups {seen[name]!r} and {group!r}; each belongs to one")
            seen[name] = group
    params = {n for n, _ in body.named_parameters()}
    if set(seen) != params:
        missing, extra = sorted(params - set(seen)), sorted(set(seen) - params)
        _fail(what, f"param_groups must cover every parameter exactly once; missing {missing[:5]}, unknown {extra[:5]}")


def _proxy_samples(modality: str, n: int = 4) -> list[dict]:
    if modality == "text":
        texts = ["a cat sat on the mat", "the stock market fell", "rain is expected tomorrow", "a dog barked"]
        return [{"text": texts[i % len(texts)], "y": torch.tensor(i % 2)} for i in range(n)]
    return [{"x": torch.rand(1 if i % 2 else 3, 20, 24), "y": torch.tensor(i % 2)} for i in range(n)]


def check_source_embedder(body: Backbone, what: str) -> None:
    """f_s is a frozen SourceEmbedder whose prepared, collated proxy batch the body accepts."""
    f_s = body.source_embedder()
    if not isinstance(f_s, SourceEmbedder):
        _fail(what, f"source_embedder() returned {type(f_s).__name__}, not a SourceEmbedder")
    if any(p.requires_grad for p in f_s.parameters()):
        _fail(what, "source_embedder() must be frozen (requires_grad False)")
    body_params = {id(p) for p in body.parameters()}
    if any(id(p) in body_params for p in f_s.parameters()):
        _fail(what, "source_embedder() shares parameters with the body; return a separate copy")
    samples = _proxy_samples(body.source_modality)
    max_tokens = min(body.max_tokens, 16) if body.family == "transformer" else body.max_tokens
    prepared = f_s.prepare(samples, max_tokens=max_tokens)
    batch = torch.utils.data.default_collate([prepared[i] for i in range(len(prepared))])
    with torch.no_grad():
        tokens, mask = f_s(batch)
        feats = body(tokens, mask) if mask is not None else body(tokens)
    if feats.shape[0] != len(samples) or feats.shape[-1] != body.width:
        _fail(what, f"body(f_s(proxy batch)) has shape {list(feats.shape)}, expected [{len(samples)}, N, {body.width}]")


def check_backbone(body: Backbone, *, batch: int = 2) -> None:
    """Attributes, forward shape, gradients, param groups, f_s, pretrained tensors and config round-trip."""
    what = f"backbone {getattr(body, 'name', type(body).__name__)!r}"
    if not isinstance(body, Backbone):
        _fail(what, f"is a {type(body).__name__}, not a mona_kit.components.Backbone")
    for attr, kind in (("width", int), ("max_tokens", int), ("source_modality", str)):
        if not isinstance(getattr(body, attr, None), kind):
            _fail(what, f"needs attribute {attr} ({kind.__name__})")
    if body.family not in ("transformer", "cnn"):
        _fail(what, f"family must be 'transformer' or 'cnn', got {body.family!r}")
    if body.family == "cnn" and not body.stem_shape:
        _fail(what, "a cnn body must set stem_shape (C, H, W)")
    check_param_groups(body, what)
    x = _body_input(body, batch)
    mask = None
    if body.family == "transformer":
        mask = torch.ones(batch, x.shape[1], dtype=torch.long)
        mask[0, -1] = 0
    body.train()
    out = body(x, mask)
    expected_tokens = body.max_tokens if body.family == "cnn" else x.shape[1]
    if tuple(out.shape) != (batch, expected_tokens, body.width):
        _fail(what, f"forward gave {list(out.shape)}, expected [{batch}, {expected_tokens}, {body.width}]")
    check_gradients_flow(body, _random_loss(out), what)
    body.eval()
    pos = body.position_embeddings()
    if pos is not None and tuple(pos.shape) != (body.max_tokens, body.width):
        _fail(what, f"position_embeddings() is {list(pos.shape)}, expected [{body.max_tokens}, {body.width}]")
    patch = body.patch_projection()
    if patch is not None and (patch.dim() != 4 or patch.shape[0] != body.width):
        _fail(what, f"patch_projection() is {list(patch.shape)}, expected [{body.width}, C, p, p]")
    check_source_embedder(body, what)
    check_config_roundtrip(body, what)


def _wrong_input(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0] + 1,) + tuple(shape[1:])


def check_embedder(embedder: Embedder, task: TaskSpec, body: Backbone, *, batch: int = 2) -> None:
    """Output fits the body, geometry is set, gradients flow, a wrong input shape is a ShapeError."""
    what = f"embedder {type(embedder).__name__} on task {task.name!r}"
    if not isinstance(embedder, Embedder):
        _fail(what, f"is a {type(embedder).__name__}, not a mona_kit.components.Embedder")
    if not isinstance(getattr(embedder, "geometry", None), dict) or "kind" not in embedder.geometry:
        _fail(what, "needs a geometry dict with a 'kind'")
    if not isinstance(getattr(embedder, "num_tokens", None), int) or embedder.num_tokens < 1:
        _fail(what, "needs num_tokens >= 1")
    embedder.train()
    out = embedder(torch.randn(batch, *task.input_shape))
    if body.family == "cnn":
        expected = (batch, *body.stem_shape)
    else:
        expected = (batch, embedder.num_tokens, body.width)
        if embedder.num_tokens > body.max_tokens:
            _fail(what, f"emits {embedder.num_tokens} tokens, over the body's budget of {body.max_tokens}")
    if tuple(out.shape) != expected:
        _fail(what, f"forward gave {list(out.shape)}, expected {list(expected)}")
    feats = body(out)
    if feats.shape[1] != embedder.num_tokens:
        _fail(what, f"the body emits {feats.shape[1]} tokens, num_tokens says {embedder.num_tokens}")
    check_gradients_flow(embedder, _random_loss(out), what)
    try:
        embedder(torch.randn(batch, *_wrong_input(tuple(task.input_shape))))
    except ShapeError as exc:
        if "\n" in str(exc):
            _fail(what, "ShapeError messages must be one line")
    else:
        _fail(what, "an input with another channel count must raise mona_kit.errors.ShapeError")
    check_config_roundtrip(embedder, what)


def check_head(head: Head, task: TaskSpec, body: Backbone, embedder: Embedder, *, batch: int = 2) -> None:
    """Body features ``[B, num_tokens, width]`` -> ``[B, *output_shape]``, with gradients to every parameter."""
    what = f"head {type(head).__name__} on task {task.name!r}"
    if not isinstance(head, Head):
        _fail(what, f"is a {type(head).__name__}, not a mona_kit.components.Head")
    head.train()
    out = head(torch.randn(batch, embedder.num_tokens, body.width))
    if tuple(out.shape) != (batch, *task.output_shape):
        _fail(what, f"forward gave {list(out.shape)}, expected {[batch, *task.output_shape]}")
    check_gradients_flow(head, _random_loss(out), what)
    check_config_roundtrip(head, what)
