"""train.precision: option checks, bf16 steps (fine-tuning and MoNA's double backward), fp16 refused on CPU."""

import json

import pytest
import torch

import toy_plugin
from mona_kit.errors import ConfigError
from mona_kit.model import CrossModalModel
from mona_kit.precision import Precision
from mona_kit.runconfig import RunConfig
from mona_plugins.methods.meta_align import inner_parameter_names, meta_terms
from test_cli import one_line_error, toy_config
from test_cli import toy_cli as toy_cli  # noqa: F401 - a fixture, used by name


def toy_model():
    torch.manual_seed(0)
    body = toy_plugin.ToyBody(width=8, layers=1)
    task = toy_plugin.make_seq_task(toy_plugin.ToySeqConfig(n_train=8)).spec
    emb = toy_plugin.ToySeqEmbedder(task, body)
    head = toy_plugin.ToyClsHead(task, body, emb)
    return CrossModalModel(emb, body, head).train()


def toy_batch():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(6, 1, 32, generator=g), torch.tensor([0, 1, 2, 0, 1, 2]),
            torch.randn(6, 5, 8, generator=g), torch.tensor([0, 0, 1, 1, 2, 2]))


def meta_gradient(model, amp: Precision) -> torch.Tensor:
    x_t, y_t, src, y_s = toy_batch()
    names = inner_parameter_names(model, ("all",))
    weight = model.embedder.proj.weight
    with amp.autocast():
        loss_task, loss_src = meta_terms(
            model, torch.nn.functional.cross_entropy, toy_plugin.ToyAlignUniform(), x_t, y_t, src, None, y_s,
            names=names, inner_steps=1, inner_lr=0.5,
        )
    (grad,) = torch.autograd.grad(loss_src, [weight])
    return grad


def test_precision_option_is_checked():
    base = {"task": "toy-seq", "backbone": "toy-body", "method": "finetune"}
    assert RunConfig.from_dict(base).train.precision == "fp32"
    assert RunConfig.from_dict({**base, "train": {"precision": "bf16"}}).train.precision == "bf16"
    with pytest.raises(ConfigError, match="'precision' must be one of 'fp32', 'bf16', 'fp16'"):
        RunConfig.from_dict({**base, "train": {"precision": "fp8"}})
    with pytest.raises(ConfigError, match="must be one of"):
        Precision("half", "cpu")


@pytest.mark.usefixtures("toy_cli")
def test_fp16_is_refused_on_cpu(capsys, tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Precision("fp16", "cpu")
    err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "device=cpu", "train.precision=fp16"])
    assert "train.precision=fp16 needs a CUDA device" in err and "bf16" in err
    assert not (tmp_path / "runs").exists()


def test_bf16_step_keeps_fp32_master_weights():
    model = toy_model()
    amp = Precision("bf16", "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x_t, y_t, _, _ = toy_batch()
    before = model.head.fc.weight.detach().clone()
    with amp.autocast():
        out = model(x_t)
        loss = torch.nn.functional.cross_entropy(out, y_t)
    assert out.dtype == torch.bfloat16  # the forward really ran in bf16
    amp.scale(loss).backward()
    assert amp.unscale(optimizer, model.parameters())
    amp.step(optimizer)
    assert torch.isfinite(loss.float())
    for p in model.parameters():
        assert p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
    assert not torch.equal(before, model.head.fc.weight)


def test_meta_gradient_under_bf16_autocast_follows_fp32():
    fp32 = meta_gradient(toy_model(), Precision("fp32", "cpu"))
    bf16 = meta_gradient(toy_model(), Precision("bf16", "cpu"))
    assert torch.isfinite(bf16).all() and bf16.abs().sum() > 0
    cosine = torch.nn.functional.cosine_similarity(fp32.flatten(), bf16.float().flatten(), dim=0)
    assert cosine > 0.95  # bf16 keeps 8 bits of mantissa: the direction, not the bits


@pytest.mark.parametrize("method", ["finetune", "mona"])
def test_bf16_run_is_finite_and_repeatable(toy_kit, tmp_path, method):
    from mona_kit.runner import run

    def once(name, precision="bf16"):
        opts = {"name": method}
        if method == "mona":
            opts.update(objective="toy-align-uniform", meta_steps=3)
        cfg = RunConfig.from_dict({
            "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text", "method": opts,
            "train": {"epochs": 1, "batch_size": 16, "precision": precision}, "output_dir": str(tmp_path), "run_name": name,
        })
        return json.loads((run(toy_kit, cfg, progress=False) / "results.json").read_text())

    a, b, fp32 = once("a"), once("b"), once("fp32", "fp32")
    assert all(torch.isfinite(torch.tensor(v)) for v in a["test"].values())
    assert a["test"] == b["test"]
    assert a["test"] != fp32["test"]  # the loop really ran the steps in bf16


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_fp16_overflow_is_logged_and_real_nonfinite_gradients_meet_the_policy(toy_kit, tmp_path, monkeypatch, policy):
    """fp16 skips an overflowed step and halves its scale; gradients still non-finite below scale 1 are
    not an overflow: train.on_nonfinite stops the run (or keeps skipping, logged). fp16 is a GPU mode,
    so the CPU check is lifted here to run the loop's fp16 path with torch's CPU GradScaler."""
    import mona_kit.loop as loop
    import mona_kit.precision as precision
    from mona_kit.errors import NumericalError
    from mona_kit.runner import run
    from mona_kit.runs import RunDir

    monkeypatch.setattr(precision, "check_precision", lambda name, device: None)
    original = loop._loss_of

    def nan_gradient(stage, session, model, batch, step):  # a finite loss whose gradient is NaN
        loss = original(stage, session, model, batch, step)
        loss = loss[0] if isinstance(loss, tuple) else loss
        w = next(p for p in model.parameters() if p.requires_grad)
        return loss + torch.sqrt((w - w.detach()).abs()).sum()

    monkeypatch.setattr(loop, "_loss_of", nan_gradient)
    cfg = RunConfig.from_dict({
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "method": "finetune",
        "train": {"epochs": 1, "batch_size": 2, "precision": "fp16", "on_nonfinite": policy},
        "output_dir": str(tmp_path), "run_name": "fp16",
    })
    if policy == "stop":
        with pytest.raises(NumericalError, match="non-finite down to loss scale"):
            run(toy_kit, cfg, progress=False)
        events = RunDir(tmp_path / "fp16").events()
    else:
        events = RunDir(run(toy_kit, cfg, progress=False)).events()
    skips = [e for e in events if e.get("event") == "skipped-fp16-overflow"]
    assert skips and skips[0]["loss_scale"] == 32768.0  # 65,536 halved by the first overflow
    assert all(b["loss_scale"] == a["loss_scale"] / 2 for a, b in zip(skips, skips[1:]))
    assert (len(skips) == 17) if policy == "stop" else (len(skips) > 17)


def test_bf16_warns_only_on_a_cpu_without_native_bf16(tmp_path):
    from mona_kit.precision import bf16_cpu_warning, cpu_has_native_bf16

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    native = tmp_path / "native"
    native.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    cpu = torch.device("cpu")
    assert cpu_has_native_bf16(str(avx2)) is False and cpu_has_native_bf16(str(native)) is True
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is None  # not Linux: no warning
    message = bf16_cpu_warning("bf16", cpu, str(avx2))
    assert message is not None and "train.precision=fp32" in message and "\n" not in message
    assert bf16_cpu_warning("bf16", cpu, str(native)) is None
    assert bf16_cpu_warning("fp32", cpu, str(avx2)) is None
    assert bf16_cpu_warning("bf16", torch.device("cpu"), str(tmp_path / "missing")) is None
