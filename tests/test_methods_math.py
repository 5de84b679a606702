"""The maths of the methods on tiny models: MoNA's meta-gradient, FPT's groups, PaRe's schedule."""

import copy

import pytest
import torch

import toy_plugin
from mona_kit.model import CrossModalModel
from mona_plugins.methods.meta_align import grad_align_loss, inner_parameter_names, meta_terms
from mona_plugins.methods.pare import mix_tokens, replaced_tokens


def tiny_model():
    torch.manual_seed(0)
    body = toy_plugin.ToyBody(width=8, layers=1)
    task = toy_plugin.make_seq_task(toy_plugin.ToySeqConfig(n_train=8)).spec
    emb = toy_plugin.ToySeqEmbedder(task, body)
    head = toy_plugin.ToyClsHead(task, body, emb)
    return CrossModalModel(emb, body, head).double().eval()


def batch():
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(6, 1, 32, generator=g, dtype=torch.float64)
    y_t = torch.tensor([0, 1, 2, 0, 1, 2])
    src = torch.randn(6, 5, 8, generator=g, dtype=torch.float64)
    y_s = torch.tensor([0, 0, 1, 1, 2, 2])
    return x_t, y_t, src, y_s


def outer(model, second_order=True):
    x_t, y_t, src, y_s = batch()
    names = inner_parameter_names(model, ("all",))
    loss_task, loss_src = meta_terms(
        model, torch.nn.functional.cross_entropy, toy_plugin.ToyAlignUniform(), x_t, y_t, src, None, y_s,
        names=names, inner_steps=1, inner_lr=0.5, second_order=second_order,
    )
    return loss_task, loss_src


def test_meta_gradient_matches_finite_differences():
    model = tiny_model()
    weight = model.embedder.proj.weight
    _, loss_src = outer(model)
    (grad,) = torch.autograd.grad(loss_src, [weight])
    eps = 1e-6
    for idx in [(0, 0, 0), (3, 0, 0), (7, 0, 1)]:
        with torch.no_grad():
            weight[idx] += eps
        plus = outer(model)[1].item()
        with torch.no_grad():
            weight[idx] -= 2 * eps
        minus = outer(model)[1].item()
        with torch.no_grad():
            weight[idx] += eps
        fd = (plus - minus) / (2 * eps)
        assert grad[idx].item() == pytest.approx(fd, rel=1e-4, abs=1e-9)
    assert grad.abs().sum() > 0


def test_first_order_gives_the_embedder_no_outer_gradient():
    model = tiny_model()
    _, loss_src = outer(model, second_order=False)
    grads = torch.autograd.grad(loss_src, list(model.embedder.parameters()), allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    _, loss_src = outer(model, second_order=True)
    grads = torch.autograd.grad(loss_src, list(model.embedder.parameters()), allow_unused=True)
    assert any(g is not None and torch.count_nonzero(g) > 0 for g in grads)


def test_grad_align_surrogate_reaches_the_embedder():
    model = tiny_model()
    x_t, y_t, src, y_s = batch()
    total, parts = grad_align_loss(
        model, torch.nn.functional.cross_entropy, toy_plugin.ToyAlignUniform(), x_t, y_t, src, None, y_s,
        names=inner_parameter_names(model, ("all",)), inner_lr=0.5, lam=0.5,
    )
    grads = torch.autograd.grad(total - torch.nn.functional.cross_entropy(model(x_t), y_t), list(model.embedder.parameters()))
    assert any(torch.count_nonzero(g) > 0 for g in grads)  # the gradient-agreement term moves f_t
    assert parts["grad_dot"] != 0


def test_inner_params_unknown_group_is_a_clear_error():
    from mona_kit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown body group"):
        inner_parameter_names(tiny_model(), ("attn",))


def test_fpt_trains_exactly_its_groups(toy_kit, tmp_path):
    from mona_kit.engine import Session
    from mona_kit.runconfig import RunConfig

    cfg = RunConfig.from_dict({"task": "toy-seq", "backbone": "toy-body", "method": "fpt", "train": {"epochs": 1, "batch_size": 16}})
    session = Session(toy_kit, cfg, progress=False)
    model = session.build_model()
    before = copy.deepcopy(model.state_dict())
    for stage in session.method.stages(session):
        stage.run(session, model)
    groups = model.named_parameter_groups()
    trained = {"embedder", "head", "body.norm", "body.position"}
    for group, params in groups.items():
        for name, _ in params:
            changed = not torch.equal(before[name], model.state_dict()[name])
            assert changed == (group in trained), (group, name)


def test_pare_schedule_is_linear_from_start_to_end():
    ks = [replaced_tokens(e, 5, 100, 0.64, 0.17) for e in range(5)]
    assert ks[0] == 64 and ks[-1] == 17
    assert all(a > b for a, b in zip(ks, ks[1:]))


def test_pare_mix_replaces_exactly_k_tokens():
    torch.manual_seed(0)
    target = torch.randn(3, 10, 4)
    source = torch.randn(3, 12, 4) + 100.0  # recognisable
    gate = torch.nn.Linear(4, 1)
    for gumbel in (True, False):
        mixed = mix_tokens(target, source, gate, 4, gumbel=gumbel, tau=0.9)
        replaced = (mixed.abs() > 50).all(-1).sum(1)
        assert replaced.tolist() == [4, 4, 4]


def test_pare_gate_gets_gradient_through_straight_through():
    target, source = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    gate = torch.nn.Linear(4, 1)
    mix_tokens(target, source, gate, 2, gumbel=True, tau=0.9).sum().backward()
    assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0


def test_mona_stage_two_starts_from_the_pretrained_body(toy_kit):
    from mona_kit.engine import Session
    from mona_kit.runconfig import RunConfig

    cfg = RunConfig.from_dict({
        "task": "toy-seq", "backbone": "toy-body", "source": "toy-text",
        "method": {"name": "mona", "objective": "toy-align-uniform", "meta_steps": 2},
        "train": {"epochs": 1, "batch_size": 16},
    })
    session = Session(toy_kit, cfg, progress=False)
    model = session.build_model()
    stages = list(session.method.stages(session))
    assert [s.name for s in stages] == ["warmup", "meta-align", "reset-body", "finetune"]
    emb_before = copy.deepcopy(model.embedder.state_dict())
    for stage in stages[:3]:
        stage.run(session, model)
    pretrained = session.pretrained_body.state_dict()
    assert all(torch.equal(v, pretrained[k]) for k, v in model.body.state_dict().items())
    assert any(not torch.equal(v, model.embedder.state_dict()[k]) for k, v in emb_before.items())


def test_linear_probe_leaves_a_cnn_body_untouched(tmp_path):
    """Frozen BatchNorm layers keep their running statistics while the head trains."""
    from mona_kit.engine import Session
    from mona_kit.kit import load_kit
    from mona_kit.runconfig import RunConfig

    kit = load_kit(entry_points=False)
    cfg = RunConfig.from_dict({"task": {"name": "darcy-16", "max_train": 16, "max_val": 8, "max_test": 8},
                               "backbone": "tiny-cnn", "method": "linear-probe", "train": {"epochs": 1, "batch_size": 8}})
    session = Session(kit, cfg, progress=False)
    model = session.build_model()
    before = copy.deepcopy(model.body.state_dict())
    for stage in session.method.stages(session):
        stage.run(session, model)
    after = model.body.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
