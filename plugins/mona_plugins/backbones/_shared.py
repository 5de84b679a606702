"""Small pieces every backbone adapter uses: frozen side parts, prepared datasets, parameter groups."""

from __future__ import annotations

import re

from torch import nn

from mona_kit.api import BODY_GROUPS


class SideParts:
    """Pretrained parts kept beside a body but outside its module tree (stem, tokenizer, classifier).

    They are not the body's parameters (not trained, not in its state_dict), and copies of the
    body share them (``copy.deepcopy`` returns the same object): f_s is copied out on demand.
    """

    def __init__(self, **parts):
        self.__dict__.update(parts)

    def __deepcopy__(self, memo):
        return self


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients: the state f_s and pretrained classifiers are used in."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# Name patterns per group, tried in BODY_GROUPS' order of specificity (norm before attention, so an
# attention block's LayerNorm is a norm; position before attention, for MPNet's relative bias).
_GROUP_RULES = (
    ("norm", re.compile(r".*norm.*|bn\d*|ln\d*|ln_.*|.*_bn")),
    ("position", re.compile(r".*position.*|pos_embed|.*rel_pos.*|relative_attention_bias")),
    ("attention", re.compile(r".*attention.*|.*attn.*|q|k|v|qkv|query|key|value")),
    ("mlp", re.compile(r"intermediate|output|mlp|ffn|feed_forward|fc1|fc2")),
    ("embeddings", re.compile(r".*embed.*|cls_token|reg_token")),
    ("head", re.compile(r"pooler|head|classifier|fc")),
)


def group_of(name: str) -> str:
    """The BODY_GROUPS group of one parameter name (CNN convolutions fall in ``other``)."""
    segments = name.lower().split(".")[:-1]  # the last segment is weight/bias/gamma
    for group, pattern in _GROUP_RULES:
        if any(pattern.fullmatch(s) for s in segments) or pattern.fullmatch(name.lower().split(".")[-1]):
            return group
    return "other"


def param_groups_by_name(module: nn.Module) -> dict[str, list[str]]:
    """Every parameter of ``module`` in exactly one group, by its name."""
    groups: dict[str, list[str]] = {g: [] for g in BODY_GROUPS}
    for name, _ in module.named_parameters():
        groups[group_of(name)].append(name)
    return groups
