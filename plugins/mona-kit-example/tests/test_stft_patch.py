"""The stft-patch embedder beyond the shared contract (tests/test_contracts.py): token budget,
LayerNorm, time order, its own positions, errors."""

import pytest
import torch

from mona_kit.api import Embedder, ShapeError, TaskSpec
from mona_kit_example.stft_patch import fit_patch


def spec(channels=1, length=256):
    return TaskSpec(
        name="sig", task_type="classification", input_shape=(channels, length), output_shape=(3,),
        loss="cross-entropy", metric="zero-one-error",
    )


def build(kit, body, options=None, **shape):
    return kit.embedders.get("stft-patch").build(options or {}, task=spec(**shape), body=body)


def test_registered_for_sequences_on_transformers_but_not_default(example_kit):
    meta = example_kit.embedders.get("stft-patch").meta
    assert meta["input_ranks"] == (2,) and meta["body_families"] == ("transformer",)
    assert not meta.get("default")
    assert example_kit.embedders.get("stft-patch").provider.plugin == "mona_kit_example"


@pytest.mark.parametrize("channels,length,options", [(1, 256, {}), (3, 100, {}), (2, 512, {"n_fft": 64, "patch": 2})])
def test_tokens_fit_the_body(example_kit, body, channels, length, options):
    emb = build(example_kit, body, options, channels=channels, length=length)
    assert isinstance(emb, Embedder)
    out = emb(torch.randn(5, channels, length))
    assert out.shape == (5, emb.num_tokens, body.width)
    assert emb.num_tokens <= body.max_tokens and torch.isfinite(out).all()
    assert emb.geometry["kind"] == "grid" and emb.geometry["grid"][0] * emb.geometry["grid"][1] == emb.num_tokens


def test_tokens_are_layer_normed_before_positions(example_kit, body):
    emb = build(example_kit, body)
    normed = emb(torch.randn(4, 1, 256) * 10) - emb.position
    assert normed.mean(-1).abs().max() < 1e-4
    assert torch.allclose(normed.std(-1, unbiased=False), torch.ones(()), atol=1e-2)


def test_time_order_reaches_the_tokens(example_kit, body):
    """An up-chirp and its reversal (a down-chirp) have the same spectrum but different tokens."""
    emb = build(example_kit, body).eval()
    t = torch.arange(256.0)
    up = torch.sin(2 * torch.pi * (0.05 * t + 0.35 * t**2 / 512)).view(1, 1, -1)
    assert (emb(up) - emb(up.flip(-1))).abs().max() > 1e-2


def test_batch_items_are_independent(example_kit, body):
    emb = build(example_kit, body).eval()
    x = torch.randn(4, 1, 256)
    assert torch.allclose(emb(x)[1:2], emb(x[1:2]), atol=1e-5)


def test_positions_start_from_the_body(example_kit, body):
    emb = build(example_kit, body)
    pretrained = body.position_embeddings()
    if pretrained is None:
        assert emb.position.abs().sum() == 0
    else:
        assert torch.allclose(emb.position.detach(), pretrained[: emb.num_tokens].float())
        assert emb.position.data_ptr() != pretrained.data_ptr()  # its own copy: the body stays untouched


@pytest.mark.parametrize("bins,frames,patch,budget", [(17, 33, 4, 16), (17, 33, 4, 128), (33, 65, 1, 7), (3, 3, 8, 1)])
def test_fit_patch_respects_the_budget(bins, frames, patch, budget):
    pf, pt = fit_patch(bins, frames, patch, budget)
    assert -(-bins // pf) * -(-frames // pt) <= budget
    assert pf >= min(patch, bins) or pt >= patch


def test_wrong_rank_and_oversized_window_are_one_line_errors(example_kit, body):
    image_task = TaskSpec(name="img", task_type="classification", input_shape=(1, 8, 8), output_shape=(3,),
                          loss="cross-entropy", metric="zero-one-error")
    with pytest.raises(ShapeError, match="takes \\(C, L\\) signals"):
        example_kit.embedders.get("stft-patch").build({}, task=image_task, body=body)
    with pytest.raises(ShapeError, match="n_fft=64 does not fit"):
        build(example_kit, body, {"n_fft": 64}, length=32)


def test_input_of_another_shape_is_a_shape_error(example_kit, body):
    emb = build(example_kit, body, channels=2, length=128)
    with pytest.raises(ShapeError, match="built for task 'sig' inputs \\(2, 128\\), got \\(3, 128\\)"):
        emb(torch.randn(2, 3, 128))
