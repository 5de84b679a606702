"""Hardening of configs, values, model folders and collectives (issue 11, groups 3, 4, 9, 10, 12).

The table runs the CLI in-process like tests/test_bad_input.py: each case is exit status 2, one
line on stderr, and nothing written under the test's folder (no run directory, no marker file).
Below it, the same checks at the Python level: build_config, the YAML loader, the ranges that
``describe`` shows, the world-size check and the collective timeout.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time

import attrs
import pytest
import yaml

import mona_kit.cli as cli
from mona_kit import yamlsafe
from mona_kit.config import SEED_MAX, build_config, config, describe_fields, option
from mona_kit.errors import ConfigError, MonaError
from mona_kit.runconfig import DiagnosticsConfig, RunConfig, TrainConfig, apply_overrides, read_config_file

# --- the kit and the base configs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def full_kit():
    """Every first-party plugin plus the toy plugin (fast bodies and data)."""
    import toy_plugin

    from mona_kit.kit import load_kit

    return load_kit(entry_points=False, extra=[toy_plugin])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    # Outside each case's folder: a dataset may cache tensors, which is not a run being written.
    return tmp_path_factory.mktemp("cache")


TOY = ["task=toy-seq", "task.n_train=32", "backbone=toy-body", "source=toy-text", "method=finetune", "train.epochs=1", "train.batch_size=16"]
REAL = ["backbone=tiny-bert", "task=gunpoint", "train.epochs=1", "method=finetune"]
TAIL = ["--no-progress", "--no-plots", "output_dir={tmp}/runs", "run_name=r"]


def _with(base: list[str], extra: tuple[str, ...]) -> list[str]:
    """``run`` with the base overrides, a case's own override replacing a base one of the same key
    (the CLI refuses a key given twice)."""
    keys = {e.partition("=")[0] for e in extra if "=" in e}
    return ["run", *(b for b in [*base, *TAIL] if b.partition("=")[0] not in keys), *extra]


def toy(*extra: str) -> list[str]:
    return _with(TOY, extra)


def real(*extra: str) -> list[str]:
    return _with(REAL, extra)


CFG = "{tmp}/cfg.yaml"
FROM_FILE = ["run", CFG, *TAIL]
TOY_YAML = "task: {name: toy-seq, n_train: 32}\nbackbone: toy-body\nsource: toy-text\nmethod: finetune\ntrain: {epochs: 1}\n"


def cfg_text(text: str):
    def setup(ctx):
        (ctx.tmp / "cfg.yaml").write_text(text)

    return setup


def cfg_bytes(data: bytes):
    def setup(ctx):
        (ctx.tmp / "cfg.yaml").write_bytes(data)

    return setup


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs shape: each anchor lists the previous one ``width`` times."""
    lines = ['l0: &l0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines)


BOMB = alias_bomb()
# ~630 bytes: the size of the issue's bomb, which expands to 9**9 (387 million) strings.
BOMB_CONFIG = TOY_YAML.replace("method: finetune\n", "method:\n  name: mona\n  objective_options:\n" + "".join(
    "    " + line + "\n" for line in BOMB.splitlines()))
DEEP = TOY_YAML + "extra: " + "[" * 5000 + "]" * 5000 + "\n"


def hf_folder(*, auto_map_in: str | None = "config.json", model_type: str = "bert"):
    """A transformers folder whose custom code would create the PWNED marker if it ever ran."""

    def setup(ctx):
        folder = ctx.tmp / "evil-bert"
        folder.mkdir()
        conf = {"model_type": model_type, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 32, "vocab_size": 50}
        code = f"open({str(ctx.tmp / 'PWNED')!r}, 'w').write('ran')\nfrom transformers import BertModel as EvilModel, BertConfig as EvilConfig\n"
        for name in ("modeling_evil.py", "configuration_evil.py", "tokenization_evil.py"):
            (folder / name).write_text(code)
        auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel",
                    "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
        tok_conf = {"tokenizer_class": "BertTokenizer"}
        if auto_map_in == "config.json":
            conf["auto_map"] = auto_map
        elif auto_map_in == "tokenizer_config.json":
            tok_conf["auto_map"] = auto_map
        (folder / "config.json").write_text(json.dumps(conf))
        (folder / "tokenizer_config.json").write_text(json.dumps(tok_conf))
        # Answer "y" if anything ever asks whether to run the folder's code.
        ctx.monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("y\ny\ny\n"))

    return setup


def world(size: int):
    def setup(ctx):
        ctx.monkeypatch.setenv("WORLD_SIZE", str(size))

    return setup


def must(option_re: str, where: str, bound: str, got: str) -> str:
    return rf"{where}: option '{option_re}' must be {bound}, got {got}; fix the value\."


TR = "config section 'train'"
DG = "config section 'diagnostics'"
RC = "run config"
MONA, ORCA, PARE = "method 'mona'", "method 'orca'", "method 'pare'"
FINITE_POS = r"a finite number > 0"
POS = r"> 0"

CASES = [
    # train: every numeric option with a bad value
    ("train-epochs-0", None, toy("train.epochs=0"), must("epochs", TR, ">= 1", "0")),
    ("train-epochs-negative", None, toy("train.epochs=-1"), must("epochs", TR, ">= 1", "-1")),
    ("train-max-steps-0", None, toy("train.max_steps=0"), must("max_steps", TR, ">= 1", "0")),
    ("train-batch-size-0", None, toy("train.batch_size=0"), must("batch_size", TR, ">= 1", "0")),
    ("train-batch-size-negative", None, toy("train.batch_size=-4"), must("batch_size", TR, ">= 1", "-4")),
    ("train-eval-batch-size-0", None, toy("train.eval_batch_size=0"), must("eval_batch_size", TR, ">= 1", "0")),
    ("train-lr-nan", None, toy("train.lr=nan"), must("lr", TR, FINITE_POS, "nan")),
    ("train-lr-yaml-nan", None, toy("train.lr=.nan"), must("lr", TR, FINITE_POS, "nan")),
    ("train-lr-inf", None, toy("train.lr=inf"), must("lr", TR, FINITE_POS, "inf")),
    ("train-lr-minus-inf", None, toy("train.lr=-.inf"), must("lr", TR, FINITE_POS, "-inf")),
    ("train-lr-overflow", None, toy("train.lr=1e400"), must("lr", TR, FINITE_POS, "inf")),
    ("train-lr-negative", None, toy("train.lr=-1"), must("lr", TR, POS, "-1.0")),
    ("train-lr-zero", None, toy("train.lr=0"), must("lr", TR, POS, "0.0")),
    ("train-embedder-lr-zero", None, toy("train.embedder_lr=0"), must("embedder_lr", TR, POS, "0.0")),
    ("train-embedder-lr-nan", None, toy("train.embedder_lr=nan"), must("embedder_lr", TR, FINITE_POS, "nan")),
    ("train-weight-decay-negative", None, toy("train.weight_decay=-0.1"), must("weight_decay", TR, ">= 0", "-0.1")),
    ("train-grad-clip-negative", None, toy("train.grad_clip=-1"), must("grad_clip", TR, POS, "-1.0")),
    ("train-grad-clip-zero", None, toy("train.grad_clip=0"), must("grad_clip", TR, POS, "0.0")),
    ("train-evals-per-epoch-0", None, toy("train.evals_per_epoch=0"), must("evals_per_epoch", TR, ">= 1", "0")),
    ("train-num-workers-negative", None, toy("train.num_workers=-1"), must("num_workers", TR, ">= 0", "-1")),
    ("train-warmup-above-1", None, toy("train.warmup=1.5"), must("warmup", TR, ">= 0 and < 1", "1.5")),
    ("train-warmup-negative", None, toy("train.warmup=-0.1"), must("warmup", TR, ">= 0 and < 1", "-0.1")),
    ("train-patience-0", None, toy("train.patience=0"), must("patience", TR, ">= 1", "0")),
    ("train-patience-start-1", None, toy("train.patience_start=1"), must("patience_start", TR, ">= 0 and < 1", "1.0")),
    ("train-plateau-window-0", None, toy("train.plateau_window=0"), must("plateau_window", TR, "> 0 and <= 1", "0.0")),
    ("train-plateau-tolerance-negative", None, toy("train.plateau_tolerance=-1"), must("plateau_tolerance", TR, ">= 0", "-1.0")),
    # diagnostics and run scalars
    ("diagnostics-reuse-every-negative", None, toy("diagnostics.reuse_every=-1"), must("reuse_every", DG, ">= 0", "-1")),
    ("diagnostics-reuse-samples-1", None, toy("diagnostics.reuse_samples=1"), must("reuse_samples", DG, ">= 2", "1")),
    ("seed-2-to-the-70", None, toy(f"seed={2**70}"), must("seed", RC, r">= 0 and <= 2\*\*63 - 1", str(2**70))),
    ("seed-2-to-the-64", None, toy(f"seed={2**64}"), must("seed", RC, r">= 0 and <= 2\*\*63 - 1", str(2**64))),
    ("seed-negative", None, toy("seed=-1"), must("seed", RC, r">= 0 and <= 2\*\*63 - 1", "-1")),
    ("threads-negative", None, toy("threads=-1"), must("threads", RC, ">= 1 and <= 1024", "-1")),
    ("threads-zero", None, toy("threads=0"), must("threads", RC, ">= 1 and <= 1024", "0")),
    ("checkpoint-every-0", None, toy("checkpoint_every=0"), must("checkpoint_every", RC, ">= 1", "0")),
    # method options
    ("specialist-epochs-scale-zero", None, toy("method=specialist", "method.epochs_scale=0"),
     must("epochs_scale", "method 'specialist'", POS, "0.0")),
    ("specialist-width-zero", None, toy("method=specialist", "method.width=0"), must("width", "method 'specialist'", ">= 1", "0")),
    ("specialist-patience-zero", None, toy("method=specialist", "method.patience=0"),
     must("patience", "method 'specialist'", ">= 1", "0")),
    ("mona-meta-steps-negative", None, toy("method=mona", "method.meta_steps=-1"), must("meta_steps", MONA, ">= 1", "-1")),
    ("mona-lam-nan", None, toy("method=mona", "method.lam=nan"), must("lam", MONA, "a finite number >= 0", "nan")),
    ("mona-lam-negative", None, toy("method=mona", "method.lam=-0.5"), must("lam", MONA, ">= 0", "-0.5")),
    ("mona-inner-lr-zero", None, toy("method=mona", "method.inner_lr=0"), must("inner_lr", MONA, POS, "0.0")),
    ("mona-inner-steps-0", None, toy("method=mona", "method.inner_steps=0"), must("inner_steps", MONA, ">= 1", "0")),
    ("mona-source-batch-0", None, toy("method=mona", "method.source_batch_size=0"), must("source_batch_size", MONA, ">= 1", "0")),
    ("mona-warmup-epochs-negative", None, toy("method=mona", "method.warmup_epochs=-1"), must("warmup_epochs", MONA, ">= 0", "-1")),
    ("mona-meta-lr-inf", None, toy("method=mona", "method.meta_lr=inf"), must("meta_lr", MONA, FINITE_POS, "inf")),
    ("mona-source-tokens-0", None, toy("method=mona", "method.source_tokens=0"), must("source_tokens", MONA, ">= 1", "0")),
    ("orca-align-epochs-0", None, toy("method=orca", "method.align_epochs=0"), must("align_epochs", ORCA, ">= 1", "0")),
    ("orca-align-lr-negative", None, toy("method=orca", "method.align_lr=-1e-3"), must("align_lr", ORCA, POS, "-0.001")),
    ("orca-max-source-0", None, toy("method=orca", "method.max_source=0"), must("max_source", ORCA, ">= 1", "0")),
    ("orca-target-samples-0", None, toy("method=orca", "method.target_samples=0"), must("target_samples", ORCA, ">= 1", "0")),
    ("orca-pseudo-label-k-0", None, toy("method=orca", "method.pseudo_label_k=0"), must("pseudo_label_k", ORCA, ">= 1", "0")),
    ("pare-start-ratio-above-1", None, toy("method=pare", "method.start_ratio=1.5"), must("start_ratio", PARE, ">= 0 and <= 1", "1.5")),
    ("pare-end-ratio-negative", None, toy("method=pare", "method.end_ratio=-0.1"), must("end_ratio", PARE, ">= 0 and <= 1", "-0.1")),
    ("pare-tau-zero", None, toy("method=pare", "method.tau=0"), must("tau", PARE, POS, "0.0")),
    ("pare-weight-negative", None, toy("method=pare", "method.weight=-1"), must("weight", PARE, ">= 0", "-1.0")),
    ("pare-gumbel-epochs-negative", None, toy("method=pare", "method.gumbel_epochs=-1"), must("gumbel_epochs", PARE, ">= 0", "-1")),
    ("pare-source-batch-0", None, toy("method=pare", "method.source_batch_size=0"), must("source_batch_size", PARE, ">= 1", "0")),
    # objective options (built from the method's objective_options)
    ("otdd-eps-negative", None, real("method=orca", "method.objective_options={eps: -1}"), r".*otdd.*option 'eps' must be > 0, got -1\.0; fix the value\."),
    ("otdd-max-iter-0", None, real("method=orca", "method.objective_options={max_iter: 0}"), r".*otdd.*option 'max_iter' must be >= 1, got 0; fix the value\."),
    ("otdd-eps-scaling-1", None, real("method=orca", "method.objective_options={eps_scaling: 1}"), r".*otdd.*option 'eps_scaling' must be >= 0 and < 1, got 1\.0; fix the value\."),
    ("mmd-bandwidth-negative", None, real("method=orca", "method.objective=mmd", "method.objective_options={bandwidths: [1, -1]}"), r".*mmd.*option 'bandwidths' must hold only finite numbers > 0, got \(1\.0, -1\.0\); fix the value\."),
    ("align-uniform-t-zero", None, real("method=mona", "method.objective_options={t: 0}"), r".*align-uniform.*option 't' must be > 0, got 0\.0; fix the value\."),
    # backbones, embedders, heads, datasets
    ("backbone-max-tokens-0", None, real("backbone.max_tokens=0"), must("max_tokens", "backbone 'tiny-bert'", ">= 1", "0")),
    ("embedder-max-tokens-0", None, real("embedder.max_tokens=0"), must("max_tokens", r"embedder '[^']+'", ">= 1", "0")),
    ("head-dropout-1", None, real("head.dropout=1"), must("dropout", r"head '[^']+'", ">= 0 and < 1", "1.0")),
    ("task-max-train-0", None, real("task.max_train=0"), must("max_train", "dataset 'gunpoint'", ">= 1", "0")),
    ("task-val-fraction-1", None, real("task.val_fraction=1"), must("val_fraction", "dataset 'gunpoint'", "> 0 and < 1", "1.0")),
    ("task-split-seed-negative", None, real("task.split_seed=-3"), must("split_seed", "dataset 'gunpoint'", r">= 0 and <= 2\*\*63 - 1", "-3")),
    ("task-length-1", None, real("task.length=1"), must("length", "dataset 'gunpoint'", ">= 2 and <= 65536", "1")),
    ("task-length-beyond-memory", None, real("task.length=100000000"), must("length", "dataset 'gunpoint'", ">= 2 and <= 65536", "100000000")),
    # config files and YAML
    ("config-binary", cfg_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20), FROM_FILE, r"config file '[^']*cfg\.yaml' is a binary file, not YAML text; pass the YAML config\."),
    ("config-not-utf8", cfg_bytes(TOY_YAML.encode() + b"run_name: caf\xe9\n"), FROM_FILE, r"config file '[^']*cfg\.yaml' is not UTF-8 text \(byte 0xe9 at offset \d+\); save it as UTF-8\."),
    ("config-control-character", cfg_text(TOY_YAML + "run_name: a\x07b\n"), FROM_FILE, r"config file '[^']*cfg\.yaml' is not valid YAML \(it holds the control character #x0007\); fix the syntax\."),
    ("config-alias-bomb", cfg_text(BOMB_CONFIG), FROM_FILE, r"config file '[^']*cfg\.yaml' expands to more than \d+ values once its aliases are resolved \(an alias bomb\); write the values out\."),
    ("config-recursive-alias", cfg_text(TOY_YAML + "extra: &a [*a]\n"), FROM_FILE, r"config file '[^']*cfg\.yaml' holds an alias inside its own anchor \(a recursive structure\); remove it\."),
    ("config-deep-nesting", cfg_text(DEEP), FROM_FILE, r"config file '[^']*cfg\.yaml' nests deeper than \d+ levels \(at line 6\); flatten it\."),
    ("config-duplicate-top-level-key", cfg_text(TOY_YAML + "method: mona\n"), FROM_FILE, r"config file '[^']*cfg\.yaml' has key 'method' twice \(lines 4 and 6\); keep one of them\."),
    ("config-duplicate-nested-key", cfg_text(TOY_YAML.replace("train: {epochs: 1}", "train:\n  lr: 1e-3\n  epochs: 1\n  lr: 1e-2")), FROM_FILE, r"config file '[^']*cfg\.yaml' has key 'lr' twice \(lines 6 and 8\); keep one of them\."),
    ("config-too-large", cfg_text(TOY_YAML + "# " + "x" * (1 << 20) + "\n"), FROM_FILE, r"config file '[^']*cfg\.yaml' is \d+ bytes, more than the 1024 kB a YAML config may have; check the path\."),
    ("config-is-a-folder", lambda ctx: (ctx.tmp / "cfg.yaml").mkdir(), FROM_FILE, r"config file '[^']*cfg\.yaml' is a folder, not a file; check the path\."),
    ("override-alias-bomb", None, toy("method=mona", "method.objective_options={" + ", ".join(BOMB.splitlines()) + "}"), r"override 'method\.objective_options' expands to more than \d+ values .*; write the values out\."),
    ("override-duplicate-key", None, toy("method=mona", "method.objective_options={t: 1, t: 2}"), r"override 'method\.objective_options' has key 't' twice \(line 1\); keep one of them\."),
    ("override-deep-nesting", None, toy("method=mona", "method.objective_options=" + "[" * 500 + "]" * 500), r"override 'method\.objective_options' nests deeper than \d+ levels \(at line 1\); flatten it\."),
    # model folders that would run their own code
    ("hf-auto-map-in-config", hf_folder(), real("backbone=hf:{tmp}/evil-bert"), r"backbone 'hf:[^']*/evil-bert': '[^']*/evil-bert/config\.json' points at custom code in the folder \(auto_map\); mona-kit never runs code from a model folder; use a model type transformers ships \(BERT, RoBERTa, MPNet, \.\.\.\)\."),
    ("hf-auto-map-in-tokenizer", hf_folder(auto_map_in="tokenizer_config.json"), real("backbone=hf:{tmp}/evil-bert"), r"backbone 'hf:[^']*/evil-bert': '[^']*/evil-bert/tokenizer_config\.json' points at custom code in the folder \(auto_map\); .*"),
    ("hf-unknown-model-type", hf_folder(auto_map_in=None, model_type="evil"), real("backbone=hf:{tmp}/evil-bert"), r"backbone 'hf:[^']*/evil-bert': '[^']*/evil-bert/config\.json' has model_type 'evil', which this transformers does not know \(it would need the folder's own code\); .*"),
    # gap and torchrun
    ("gap-samples-0", None, ["gap", "--samples", "0", *TOY], r"gap: --samples must be >= 1 \(samples per side\), got 0; e\.g\. --samples 256\."),
    ("gap-samples-negative", None, ["gap", "--samples", "-3", *TOY], r"gap: --samples must be >= 1 \(samples per side\), got -3; e\.g\. --samples 256\."),
    ("torchrun-batch-not-divisible", world(3), toy(), r"train\.batch_size=16 is a global batch and must divide by the 3 ranks; choose a multiple of 3\."),
]


class Ctx:
    def __init__(self, tmp, monkeypatch):
        self.tmp, self.monkeypatch = tmp, monkeypatch


def disk_state(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_has_enough_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


def test_the_alias_bomb_is_the_issues_size_and_would_explode():
    assert 550 <= len(BOMB_CONFIG) - len(TOY_YAML) <= 700
    assert 9**9 > yamlsafe.MAX_NODES  # fully expanded it is 387 million strings


@pytest.mark.parametrize("case_id,setup,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_config_input(case_id, setup, argv, expected, full_kit, cache_dir, tmp_path, monkeypatch, capsys):
    import mona_kit.kit

    monkeypatch.setenv("MONA_KIT_CACHE", str(cache_dir))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = Ctx(tmp_path, monkeypatch)
    if setup is not None:
        setup(ctx)
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: full_kit)
    capsys.readouterr()
    before = disk_state(tmp_path)

    started = time.monotonic()
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mona-kit: error: ")
    message = err[len("mona-kit: error: ") : -1]
    assert re.fullmatch(expected, message), message
    # Generous: it only catches a loader that expands the bomb or recurses without a bound.
    assert time.monotonic() - started < 120

    assert not (tmp_path / "PWNED").exists()  # no model-folder code ran
    assert not (tmp_path / "runs").exists()  # failed before any run directory
    assert disk_state(tmp_path) == before


# --- the Python API -------------------------------------------------------------------------------


@config
class Ranged:
    count: int = option(3, min=1, help="how many")
    share: float = option(0.5, min=0, max=1, max_exclusive=True, help="a fraction")
    rate: float | None = option(None, min=0, min_exclusive=True, help="a rate")
    widths: tuple[float, ...] = option((1.0, 2.0), min=0, min_exclusive=True, help="widths")
    loose: float = option(0.0, finite=False, help="may be inf")
    plain: float = 1.0


@pytest.mark.parametrize(
    "options,match",
    [
        ({"count": 0}, r"thing: option 'count' must be >= 1, got 0; fix the value\."),
        ({"share": 1.0}, r"thing: option 'share' must be >= 0 and < 1, got 1\.0; fix the value\."),
        ({"rate": 0}, r"thing: option 'rate' must be > 0, got 0\.0; fix the value\."),
        ({"rate": float("nan")}, r"thing: option 'rate' must be a finite number > 0, got nan; fix the value\."),
        ({"widths": [1, 0]}, r"thing: option 'widths' must hold only finite numbers > 0, got \(1\.0, 0\.0\); fix the value\."),
        ({"widths": [1, float("inf")]}, r"thing: option 'widths' must hold only finite numbers > 0, got \(1\.0, inf\); fix the value\."),
        ({"plain": float("inf")}, r"thing: option 'plain' must be a finite number, got inf; fix the value\."),
        ({"plain": "nan"}, r"thing: option 'plain' must be a finite number, got nan; fix the value\."),
    ],
)
def test_build_config_rejects_out_of_range(options, match):
    with pytest.raises(ConfigError, match=match):
        build_config(Ranged, options, where="thing")


def test_build_config_accepts_bounds_and_allowed_non_finite():
    cfg = build_config(Ranged, {"count": 1, "share": 0.0, "rate": None, "widths": [0.5], "loose": float("inf")})
    assert (cfg.count, cfg.share, cfg.rate, cfg.widths) == (1, 0.0, None, (0.5,)) and math.isinf(cfg.loose)


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match=r"option 'batch_size' must be >= 1, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match=r"option 'reuse_samples' must be >= 2, got 0"):
        DiagnosticsConfig(reuse_samples=0)


BASE = {"task": "toy-seq", "backbone": "toy-body", "method": "finetune"}


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"train": {"batch_size": 0}}, r"config section 'train': option 'batch_size' must be >= 1, got 0; fix the value\."),
        ({"train": {"lr": float("nan")}}, r"config section 'train': option 'lr' must be a finite number > 0, got nan"),
        ({"train": {"grad_clip": -1.0}}, r"config section 'train': option 'grad_clip' must be > 0, got -1\.0"),
        ({"seed": 2**70}, r"run config: option 'seed' must be >= 0 and <= 2\*\*63 - 1, got 1180591620717411303424"),
        ({"threads": -1}, r"run config: option 'threads' must be >= 1 and <= 1024, got -1"),
    ],
)
def test_run_config_raises_config_error(changes, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_dict({**BASE, **changes})


def test_largest_seed_and_none_values_pass():
    cfg = RunConfig.from_dict({**BASE, "seed": SEED_MAX, "threads": None, "train": {"max_steps": None, "grad_clip": None}})
    assert cfg.seed == SEED_MAX and cfg.train.grad_clip is None


def test_output_dir_tilde_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = RunConfig.from_dict(apply_overrides(BASE, ["output_dir=~/x"]))
    assert cfg.output_dir == str(tmp_path / "x")
    assert RunConfig.from_dict(cfg.to_plain()) == cfg  # the recorded config resolves the same way


def test_describe_shows_ranges(full_kit, monkeypatch, capsys):
    import mona_kit.kit

    rows = {r["name"]: r for r in describe_fields(TrainConfig)}
    assert rows["batch_size"]["range"] == ">= 1" and rows["lr"]["range"] == "> 0"
    assert rows["optimizer"]["range"] == ""
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: full_kit)
    assert cli.main(["describe", "mona"]) == 0
    out = capsys.readouterr().out
    assert "meta_steps: int (>= 1) = 40" in out and "inner_lr: float | None (> 0) = None" in out
    assert cli.main(["describe", "otdd", "--json"]) == 0
    fields = {f["name"]: f for f in json.loads(capsys.readouterr().out)[0]["config"]}
    assert fields["eps_scaling"]["range"] == ">= 0 and < 1" and fields["seed"]["range"] == ">= 0 and <= 2**63 - 1"


#: Numeric options that are deliberately unbounded (finite is still checked for floats).
UNBOUNDED = {"beta", "target_step"}


def test_every_first_party_numeric_option_has_a_range(full_kit):
    """Every int/float option of a first-party config (and the run config) declares its range."""
    classes = {TrainConfig, DiagnosticsConfig}
    for kind in ("backbones", "embedders", "heads", "objectives", "datasets", "methods", "metrics"):
        for entry in getattr(full_kit, kind):
            module = getattr(entry.config, "__module__", "")
            # methods.references is a work in progress of another slice of issue 11; it declares its own.
            if entry.config is not None and module.startswith("mona_plugins.") and ".references" not in module:
                classes.add(entry.config)
    missing = []
    for cls in classes:
        attrs.resolve_types(cls)
        for f in attrs.fields(cls):
            numeric = any(t in (int, float) for t in (f.type, *getattr(f.type, "__args__", ())))
            if numeric and "range" not in f.metadata and f.name not in UNBOUNDED:
                missing.append(f"{cls.__name__}.{f.name}")
    assert len(classes) > 20 and not missing, missing


# --- the YAML loader --------------------------------------------------------------------------------


def test_loader_keeps_merge_keys_and_anchors():
    data = yamlsafe.load_yaml_text("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\nc: [*x, *x]\n")
    assert data == {"a": {"p": 1, "q": 2}, "b": {"p": 3, "q": 2}, "c": [{"p": 1, "q": 2}] * 2}


def test_loader_refuses_code_and_bounds_aliases():
    with pytest.raises(ConfigError):
        yamlsafe.load_yaml_text("!!python/object/apply:os.system ['echo hi']")
    text = "\n".join(f"k{i}: &a{i} 1" for i in range(yamlsafe.MAX_ALIASES + 1)) + "\nlist: [" + ", ".join(
        f"*a{i}" for i in range(yamlsafe.MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ConfigError, match=r"uses more than \d+ aliases"):
        yamlsafe.load_yaml_text(text, what="x")


def test_loader_huge_integer_is_one_line():
    with pytest.raises(ConfigError, match=r"holds a value YAML cannot represent here \(ValueError\)"):
        yamlsafe.load_yaml_text("seed: " + "9" * 5000)


def test_load_yaml_file_for_sweep_profiles(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("methods: [a]\nmethods: [b]\n")
    with pytest.raises(ConfigError, match=r"sweep profile '[^']*p\.yaml' has key 'methods' twice \(lines 1 and 2\)"):
        yamlsafe.load_yaml_file(path, what="sweep profile")
    with pytest.raises(ConfigError, match=r"sweep profile '[^']*nope\.yaml' does not exist; check the path\."):
        yamlsafe.load_yaml_file(tmp_path / "nope.yaml", what="sweep profile")
    path.write_text("")
    assert yamlsafe.load_yaml_file(path, what="sweep profile") is None


def test_override_that_is_not_yaml_stays_a_string():
    data = apply_overrides(BASE, ["run_name=a: b: c", "output_dir=[x"])
    assert data["run_name"] == "a: b: c" and data["output_dir"] == "[x"


def test_read_config_file_agrees_with_safe_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(TOY_YAML)
    assert read_config_file(path) == yaml.safe_load(TOY_YAML)


# --- model folders, world size, collectives ---------------------------------------------------------


def test_hf_loader_passes_trust_remote_code_false(tmp_path, monkeypatch):
    """Even for a folder that passes the pre-check, transformers is told never to run folder code."""
    import transformers

    from mona_plugins.backbones.configs import TextBackboneConfig
    from mona_plugins.backbones.hf import load_hf_folder

    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", "missing"))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    hf_folder(auto_map_in=None)(Ctx(tmp_path, monkeypatch))
    with pytest.raises(MonaError, match="cannot load the transformers model"):
        load_hf_folder(tmp_path / "evil-bert", TextBackboneConfig(), name="hf:x")
    assert seen == [False]


def test_world_size_check(monkeypatch):
    from mona_kit.distributed import check_global_batch, dist_timeout_s

    check_global_batch(32, 4)
    with pytest.raises(ConfigError, match=r"train\.batch_size=30 is a global batch and must divide by the 4 ranks"):
        check_global_batch(30, 4)
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="must divide by the 4 ranks"):
        RunConfig.from_dict({**BASE, "train": {"batch_size": 30}})
    monkeypatch.setenv("MONA_KIT_DIST_TIMEOUT", "-5")
    with pytest.raises(ConfigError, match=r"MONA_KIT_DIST_TIMEOUT='-5' must be a positive number of seconds"):
        dist_timeout_s()
    monkeypatch.setenv("MONA_KIT_DIST_TIMEOUT", "12.5")
    assert dist_timeout_s() == 12.5


def _stalled_rank(rank: int, port: int, queue) -> None:
    import os

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), MONA_KIT_DIST_TIMEOUT="3")
    from mona_kit.distributed import barrier, init_from_env

    info = init_from_env("cpu")
    barrier(info)
    if rank == 1:  # stands in for a SIGSTOPped rank: never reaches the next collective
        time.sleep(15)
        return
    started = time.monotonic()
    try:
        barrier(info)
        queue.put(("no error", time.monotonic() - started))
    except MonaError as exc:
        queue.put((str(exc), time.monotonic() - started))
    except BaseException as exc:  # anything else is the bug this test is about
        queue.put((f"{type(exc).__name__}: {exc}", time.monotonic() - started))


@pytest.mark.distributed
def test_stopped_rank_times_out_with_one_line():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_stalled_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        message, waited = queue.get(timeout=120)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert message.startswith("rank 0 of 2: a barrier failed waiting for the other ranks (limit 3 s"), message
    assert "\n" not in message and waited < 60


def test_pseudo_labels_take_a_64_bit_seed():
    import numpy as np

    from mona_kit.diagnostics import pseudo_labels

    labels = pseudo_labels(np.arange(40, dtype=float).reshape(20, 2), k=3, seed=SEED_MAX)
    assert labels.shape == (20,) and len(set(labels.tolist())) == 3
