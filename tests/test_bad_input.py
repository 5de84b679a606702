"""Bad input across CLI, configs, plugins, weights, datasets, run directories and checkpoints: each
case is one line on stderr saying what is wrong and how to fix it, exit status 2, and nothing on
disk lost, changed or half-written.

Covered elsewhere (not repeated here): unknown names and typos in keys/options/values and an
existing run directory without --overwrite (tests/test_cli.py), a config that resolves differently
on resume (tests/test_resume.py), a broken plugin installed as a wheel and MONA_KIT_PLUGINS
(tests/test_example_plugin.py), full disks and NaN gradients (tests/test_faults.py), truncated
benchmark files and unsafe pickles in datasets (tests/test_benchmark_loaders.py, tests/test_datasets.py).
"""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch
import yaml

import mona_kit.cli as cli
from mona_kit.components import TaskData
from mona_kit.config import config, option
from mona_kit.hookspecs import hookimpl

# --- a plugin that builds every kind of bad component ------------------------------------------


@config
class BadDataConfig:
    kind: str = option("ok", help="which defect the data has")


def _bad_task(cfg: BadDataConfig):
    import toy_plugin

    good = toy_plugin.make_seq_task(toy_plugin.ToySeqConfig(n_train=32))
    if cfg.kind == "not-taskdata":
        return {"train": good.train}

    def rows(ds, fn):
        return toy_plugin.ListDataset([fn(dict(ds[i]), i) for i in range(len(ds))])

    defects = {
        "empty-train": lambda: (toy_plugin.ListDataset([]), good.val),
        "empty-val": lambda: (good.train, toy_plugin.ListDataset([])),
        "shape": lambda: (rows(good.train, lambda s, i: {**s, "x": s["x"][:, :16]}), good.val),
        "dtype": lambda: (rows(good.train, lambda s, i: {**s, "x": s["x"].double()}), good.val),
        "nan": lambda: (rows(good.train, lambda s, i: {**s, "x": s["x"] * float("nan")}), good.val),
        "label-range": lambda: (rows(good.train, lambda s, i: {**s, "y": torch.tensor(7)}), good.val),
        "label-dtype": lambda: (rows(good.train, lambda s, i: {**s, "y": s["y"].float()}), good.val),
    }
    train, val = defects[cfg.kind]()
    return TaskData(spec=good.spec, train=train, val=val, test=good.test)


def _raising_embedder(task, body):
    raise ValueError("kernel size must be odd")


class _FlatEmbedder(torch.nn.Module):
    """Returns [B, D] where the body needs [B, N, D]."""

    def __init__(self, task, body):
        super().__init__()
        self.proj = torch.nn.Linear(task.input_shape[-1], body.width)

    def forward(self, x):
        return self.proj(x[:, 0])


def _wide_head(task, body, embedder):
    import toy_plugin

    head = toy_plugin.ToyClsHead(task, body, embedder)
    head.fc = torch.nn.Linear(body.width, 5)  # 5 outputs for a 3-class task
    return head


def _register_bad(register):
    register("bad-data", _bad_task, config=BadDataConfig, summary="toy task with a chosen defect")


def _register_bad_embedders(register):
    kw = dict(input_ranks=(2,), body_families=("transformer",))
    register("raising-embed", _raising_embedder, summary="embedder whose factory raises", **kw)
    register("plain-module-embed", lambda task, body: _FlatEmbedder(task, body), summary="not an Embedder", **kw)
    register("wide-head", _wide_head, role="head", summary="head with the wrong width", task_types=("classification",))


def _register_bad_backbones(register):
    register("string-body", lambda: "not a module", summary="backbone factory returning a string")


bad_plugin = types.ModuleType("bad_plugin")
bad_plugin.register_datasets = hookimpl(_register_bad)
bad_plugin.register_embedders = hookimpl(_register_bad_embedders)
bad_plugin.register_backbones = hookimpl(_register_bad_backbones)


@pytest.fixture
def bad_kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    return load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=[toy_plugin, bad_plugin])


# --- setups: each prepares files under tmp and may swap the kit -----------------------------------

BASE = {
    "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text", "method": "finetune",
    "train": {"epochs": 1, "batch_size": 16}, "checkpoint_every": 1,
}


def write_cfg(ctx, text=None, **changes):
    path = ctx.tmp / "cfg.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({**BASE, "output_dir": str(ctx.tmp / "runs"), "run_name": "r", **changes}))


def plain_cfg(ctx):
    write_cfg(ctx)


def cfg_with(**changes):
    return lambda ctx: write_cfg(ctx, **changes)


def cfg_text(text):
    return lambda ctx: write_cfg(ctx, text=text)


class Killed(BaseException):
    pass


def killed_run(ctx, *, stage="finetune", after=3):
    """A toy run killed after ``after`` logged steps of ``stage`` (checkpoint every step)."""
    from mona_kit.engine import Session
    from mona_kit.runconfig import RunConfig
    from mona_kit.runner import run

    original = Session.log

    def log(self, **event):
        original(self, **event)
        if event.get("stage") == stage and event.get("step") == after and "loss" in event:
            raise Killed()

    ctx.monkeypatch.setattr(Session, "log", log)
    cfg = {**BASE, "train": {"epochs": 2, "batch_size": 8}, "output_dir": str(ctx.tmp / "runs"), "run_name": "r"}
    with pytest.raises(Killed):
        run(ctx.kit, RunConfig.from_dict(cfg), progress=False)
    ctx.monkeypatch.setattr(Session, "log", original)
    return ctx.tmp / "runs" / "r"


def finished_but_evaluate(ctx):
    """A finished run whose progress says the final evaluation has not run: resume reads stage-0.safetensors."""
    from mona_kit.runconfig import RunConfig
    from mona_kit.runner import run

    cfg = {**BASE, "output_dir": str(ctx.tmp / "runs"), "run_name": "r"}
    path = run(ctx.kit, RunConfig.from_dict(cfg), progress=False, checkpoints="all")  # keep stage-0 for the rewind
    (path / "results.json").unlink()
    (path / "checkpoints" / "progress.json").write_text(json.dumps({"done": ["finetune"]}))
    return path


class Payload:
    """Unpickling this would create the marker file: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def slot_file(run_dir, suffix):
    pointer = json.loads((run_dir / "checkpoints" / "stage-0-latest.json").read_text())
    return run_dir / "checkpoints" / f"stage-0-{pointer['slot']}{suffix}"


def malicious_slot(ctx):
    run_dir = killed_run(ctx)
    torch.save({"optimizer": Payload(ctx.tmp / "PWNED"), "step": 3}, slot_file(run_dir, ".pt"))


def malicious_start(ctx):
    run_dir = killed_run(ctx)
    torch.save({"rng": Payload(ctx.tmp / "PWNED")}, run_dir / "checkpoints" / "stage-0-start.pt")


def truncated_slot_weights(ctx):
    path = slot_file(killed_run(ctx), ".safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage_slot_state(ctx):
    slot_file(killed_run(ctx), ".pt").write_bytes(b"\x80\x04garbage that is not a checkpoint")


def damaged_pointer(ctx):
    (killed_run(ctx) / "checkpoints" / "stage-0-latest.json").write_text('{"slot": "a", "st')


def pointer_to_missing_slot(ctx):
    run_dir = killed_run(ctx)
    slot_file(run_dir, ".safetensors").unlink()


def damaged_progress(ctx):
    (finished_but_evaluate(ctx) / "checkpoints" / "progress.json").write_text("[1, 2")


def truncated_stage_weights(ctx):
    path = finished_but_evaluate(ctx) / "checkpoints" / "stage-0.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def foreign_stage_weights(ctx):
    from safetensors.torch import save_file

    save_file({"encoder.weight": torch.zeros(2, 2)}, str(finished_but_evaluate(ctx) / "checkpoints" / "stage-0.safetensors"))


def damaged_run_config(ctx):
    (killed_run(ctx) / "config.yaml").write_text("task: {name: toy-seq\n  broken: [")


def other_plugin_version(ctx):
    run_dir = killed_run(ctx)
    env = json.loads((run_dir / "env.json").read_text())
    env["plugins"]["toy_plugin"]["version"] = "9.9.9"
    (run_dir / "env.json").write_text(json.dumps(env))


def damaged_env(ctx):
    (killed_run(ctx) / "env.json").write_text("{not json")


def run_dir_is_a_file(ctx):
    write_cfg(ctx)
    (ctx.tmp / "runs").mkdir()
    (ctx.tmp / "runs" / "r").write_text("my notes")


def output_parent_is_a_file(ctx):
    (ctx.tmp / "blocker").write_text("a file where a folder should be")
    write_cfg(ctx, output_dir=str(ctx.tmp / "blocker" / "runs"))


def plugin_raises_at_import(ctx):
    (ctx.tmp / "boom_plugin.py").write_text("raise RuntimeError('boom: missing licence key')\n")
    ctx.monkeypatch.syspath_prepend(str(ctx.tmp))
    ctx.monkeypatch.delitem(sys.modules, "boom_plugin", raising=False)
    from mona_kit.kit import load_kit

    ctx.kit_factory = lambda: load_kit(builtins=["boom_plugin"], entry_points=False)


def plugin_hook_raises(ctx):
    import toy_plugin

    from mona_kit.kit import load_kit

    broken = types.ModuleType("hook_raiser")

    def register_datasets(register):
        raise KeyError("toy-missing-table")

    broken.register_datasets = hookimpl(register_datasets)
    ctx.kit_factory = lambda: load_kit(builtins=[], entry_points=False, extra=[toy_plugin, broken])


def real_backbones(ctx):
    from mona_kit.kit import load_kit

    write_cfg(ctx)
    ctx.kit_factory = lambda: load_kit(builtins=["mona_plugins.backbones", "mona_plugins.methods"], entry_points=False, extra=[__import__("toy_plugin")])


def hf_folder_with_pickled_weights(ctx):
    """A HuggingFace folder whose only weights file is a pickle with a payload."""
    real_backbones(ctx)
    folder = ctx.tmp / "evil-bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
                                                    "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 50}))
    torch.save({"bert.embeddings.word_embeddings.weight": Payload(ctx.tmp / "PWNED")}, folder / "pytorch_model.bin")


def foreign_folder_with_a_config(ctx):
    """A user's folder that happens to hold a run config (copied there to edit), a draft and notes."""
    folder = ctx.tmp / "mine"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({**BASE, "output_dir": str(ctx.tmp), "run_name": "mine"}))
    (folder / ".draft.tmp").write_text("half a paragraph")
    (folder / "notes.txt").write_text("my notes")


R = "{tmp}/runs/r"
CFG = "{tmp}/cfg.yaml"
RUN = ["run", CFG, "--no-progress", "--no-plots"]
RESUME = ["run", "--resume", R, "--no-progress"]
CK = r"'[^']*/runs/r/checkpoints/"
RESTORE = r"restore the file from a backup or start a new run with the same config\."

CASES = [
    # CLI
    ("resume-not-a-run-dir", None, ["run", "--resume", "{tmp}/nope"], r"'[^']*/nope' does not exist; pass the folder a run created \(mona-kit run prints it as 'run directory: \.\.\.'\)\."),
    ("two-config-files", plain_cfg, ["run", CFG, "{tmp}/other.yaml"], r"run takes one config file, got \[.*\]; pass the others' settings as key=value \(and separate the items of --methods with commas, not spaces\)\."),
    ("override-too-deep", plain_cfg, RUN + ["method.a.b=1"], r"override 'method\.a\.b' is too deep; use method\.OPTION=value\."),
    ("override-bad-nesting", plain_cfg, RUN + ["seed.x=1"], r"override 'seed\.x': only train\.X, diagnostics\.X and COMPONENT\.X nest\."),
    ("override-name-not-a-string", plain_cfg, RUN + ["method=5"],
     r"override method= takes a registered name \(list them with 'mona-kit list methods'\), got 5; set its options one by one as method\.OPTION=value\."),
    ("override-hub-prefix-without-id", plain_cfg, RUN + ["backbone=timm:"], r"override backbone=timm: lacks the id after the colon; write backbone=timm:ID\."),
    ("override-given-twice", plain_cfg, RUN + ["seed=1", "seed=2"], r"seed is given twice \(seed=1, seed=2\); keep the one you mean\."),
    ("threads-beyond-any-cpu", plain_cfg, RUN + ["threads=100000"], r"run config: option 'threads' must be >= 1 and <= 1024, got 100000; fix the value\."),
    ("methods-empty-item", plain_cfg, RUN + ["--methods", "finetune,"],
     r"--methods 'finetune,' has an empty item; list method names separated by commas \(e\.g\. --methods mona,finetune\)\."),
    ("methods-and-method", plain_cfg, RUN + ["--methods", "finetune,mona", "method=finetune"],
     r"--methods and method= both choose the method; use --methods for several, method= for one\."),
    ("methods-twice", plain_cfg, RUN + ["--methods", "finetune,mona,finetune"],
     r"--methods 'finetune,mona,finetune' names finetune twice; list each of the method names once\."),
    ("gap-objectives-twice", plain_cfg, ["gap", CFG, "--objectives", "mmd,mmd"],
     r"gap: --objectives 'mmd,mmd' names mmd twice; list each of the distances once\."),
    ("gap-objectives-empty", plain_cfg, ["gap", CFG, "--objectives", ","],
     r"gap: --objectives ',' has an empty item; list distances separated by commas \(e\.g\. --objectives otdd,mmd\)\."),
    ("data-root-for-shipped-data", None, ["data", "verify", "toy-seq", "--root", "{tmp}"], r"dataset 'toy-seq' ships its data and reads no files; drop --root\."),
    ("data-option-given-twice", None, ["data", "info", "toy-seq", "n_train=8", "n_train=9"], r"n_train is given twice \(n_train=8, n_train=9\); keep the one you mean\."),
    ("unknown-method-in-methods", plain_cfg, RUN + ["--methods", "finetune,mnoa"], r"unknown method 'mnoa'\. Did you mean 'mona', [^?]*\? Run 'mona-kit list methods' to see them all\."),
    # Configs
    ("yaml-syntax", cfg_text("task: [toy-seq,\nbackbone: toy-body\n"), RUN, r"config file '[^']*cfg\.yaml' is not valid YAML at line \d+; fix the syntax\."),
    ("config-empty", cfg_text(""), RUN, r"config file '[^']*cfg\.yaml' is empty; it needs at least task, backbone and method\."),
    ("config-is-a-list", cfg_text("- task\n- backbone\n"), RUN, r"config file '[^']*cfg\.yaml' must hold a mapping of key: value\."),
    ("config-missing-task", cfg_text("backbone: toy-body\nmethod: finetune\n"), RUN, r"the run config needs 'task'; add e\.g\. 'task: NAME' \(see 'mona-kit list'\)\."),
    ("component-as-list", cfg_with(task=[1, 2]), RUN, r"config key 'task' must be a name or a mapping with 'name', got \[1, 2\]\."),
    ("component-without-name", cfg_with(method={"lam": 0.3}), RUN, r"config key 'method' needs a 'name' \(e\.g\. method: \{name: \.\.\., option: value\}\)\."),
    ("bad-choice", plain_cfg, RUN + ["train.on_nonfinite=maybe"], r"config section 'train': option 'on_nonfinite' must be one of 'stop', 'skip', got 'maybe'\."),
    ("seed-not-int", plain_cfg, RUN + ["seed=abc"], r"run config: option 'seed' must be int, got 'abc'; fix the value\."),
    ("cuda-without-gpu", plain_cfg, RUN + ["device=cuda"], r"device 'cuda' asked for, but no CUDA GPU is visible; use device=cpu\."),
    ("unknown-source-proxy", plain_cfg, RUN + ["method=mona", "source=toy-txt"], r"unknown dataset 'toy-txt'\. Did you mean 'toy-text', 'toy-seq'\? Run 'mona-kit list datasets' to see them all\."),
    # Plugins and components
    ("plugin-raises-at-import", plugin_raises_at_import, ["list", "datasets"], r"built-in plugin boom_plugin failed to import: RuntimeError: boom: missing licence key"),
    ("plugin-hook-raises", plugin_hook_raises, ["list", "datasets"], r"plugin hook_raiser \(\(in-process\) 0\.1\.0\) raised in register_datasets: KeyError: 'toy-missing-table'\. Fix or uninstall plugin 'hook_raiser', or leave it out: MONA_KIT_PLUGINS=none\."),
    ("dataset-returns-a-dict", plain_cfg, RUN + ["task=bad-data", "task.kind=not-taskdata"], r"dataset 'bad-data' \(.*bad_plugin.*\) returned dict, not a TaskData; fix the plugin\."),
    ("backbone-returns-a-string", plain_cfg, RUN + ["backbone=string-body"], r"backbone 'string-body' \(.*bad_plugin.*\) returned str, not a Backbone; fix the plugin\."),
    ("embedder-factory-raises", plain_cfg, RUN + ["embedder=raising-embed"], r"building the components \(task 'toy-seq', backbone 'toy-body', embedder 'raising-embed', head 'auto', method 'finetune'\) raised ValueError: kernel size must be odd; check the component's files and options, or fix its plugin\."),
    ("embedder-not-an-embedder", plain_cfg, RUN + ["embedder=plain-module-embed"], r"embedder 'plain-module-embed' \(.*bad_plugin.*\) returned _FlatEmbedder, not an Embedder; fix the plugin\."),
    ("head-wrong-output-shape", plain_cfg, RUN + ["head=wide-head"], r"embedder 'toy-seq-embed' -> body 'toy-body' -> head 'wide-head' gives outputs \[2, 5\] for task 'toy-seq', which needs \[2, 3\]; choose a head for a classification task \(see 'mona-kit list heads'\)\."),
    # Weights
    ("hf-weights-folder-missing", real_backbones, RUN + ["backbone=hf:{tmp}/no-such-model"], r"backbone 'hf:[^']*/no-such-model': model folder '[^']*/no-such-model' does not exist; expected a transformers model folder \(config\.json, weights, tokenizer files\), e\.g\. one saved by save_pretrained\(\); fix the path\."),
    ("hf-weights-pickle-payload", hf_folder_with_pickled_weights, RUN + ["backbone=hf:{tmp}/evil-bert"], r"building the components \(task 'toy-seq', backbone 'hf:[^']*/evil-bert', .*\) raised UnpicklingError: Weights only load failed\. This file can still be loaded, to do so you have two options, do those steps only if you trust the source of the checkpoint; check the component's files and options, or fix its plugin\."),
    # Datasets
    ("empty-train-split", plain_cfg, RUN + ["task=bad-data", "task.kind=empty-train"], r"dataset 'toy-seq': split 'train' is empty; check the dataset's files and size caps\."),
    ("empty-val-split", plain_cfg, RUN + ["task=bad-data", "task.kind=empty-val"], r"dataset 'toy-seq': split 'val' is empty; check the dataset's files and size caps\."),
    ("input-wrong-shape", plain_cfg, RUN + ["task=bad-data", "task.kind=shape"], r"dataset 'toy-seq': split 'train' sample 0: 'x' has shape \(1, 16\), the spec says \(1, 32\); fix the dataset \(or its plugin\) to match its spec\."),
    ("input-wrong-dtype", plain_cfg, RUN + ["task=bad-data", "task.kind=dtype"], r"dataset 'toy-seq': split 'train' sample 0: 'x' must be a float32 tensor, got torch\.float64; fix the dataset \(or its plugin\) to match its spec\."),
    ("input-nan", plain_cfg, RUN + ["task=bad-data", "task.kind=nan"], r"dataset 'toy-seq': split 'train' sample 0: 'x' holds NaN or Inf; fix the dataset \(or its plugin\) to match its spec\."),
    ("label-out-of-range", plain_cfg, RUN + ["task=bad-data", "task.kind=label-range"], r"dataset 'toy-seq': split 'train' sample 0: label 7 outside 0\.\.2; fix the dataset \(or its plugin\) to match its spec\."),
    ("label-wrong-dtype", plain_cfg, RUN + ["task=bad-data", "task.kind=label-dtype"], r"dataset 'toy-seq': split 'train' sample 0: a class label must be a 0-d int64 tensor, got torch\.float32 \(\); fix the dataset \(or its plugin\) to match its spec\."),
    # Run directories
    ("run-dir-is-a-file", run_dir_is_a_file, RUN, r"run directory '[^']*/runs/r' is an existing file, not a folder; choose another run_name or output_dir\."),
    ("output-dir-unwritable", output_parent_is_a_file, RUN, r"cannot write run directory '[^']*/blocker/runs/r': Not a directory; choose a writable output_dir\."),
    # Checkpoints
    ("checkpoint-payload-in-slot", malicious_slot, RESUME, rf"checkpoint {CK}stage-0-[ab]\.pt' cannot be loaded safely \(UnpicklingError\); it is corrupt, truncated or holds objects other than plain data \(nothing in it was run\); {RESTORE}"),
    ("checkpoint-payload-in-stage-start", malicious_start, RESUME, rf"checkpoint {CK}stage-0-start\.pt' cannot be loaded safely \(UnpicklingError\).*{RESTORE}"),
    ("checkpoint-weights-truncated", truncated_slot_weights, RESUME, rf"checkpoint {CK}stage-0-[ab]\.safetensors' is corrupt or truncated \(SafetensorError\); {RESTORE}"),
    ("checkpoint-state-garbage", garbage_slot_state, RESUME, rf"checkpoint {CK}stage-0-[ab]\.pt' cannot be loaded safely \(\w+\).*{RESTORE}"),
    ("checkpoint-pointer-damaged", damaged_pointer, RESUME, rf"{CK}stage-0-latest\.json' is damaged \(not the file a run writes\); restore it from a backup or start a new run\."),
    ("checkpoint-slot-missing", pointer_to_missing_slot, RESUME, rf"checkpoint {CK}stage-0-[ab]\.safetensors' does not exist; {RESTORE}"),
    ("progress-damaged", damaged_progress, RESUME, rf"{CK}progress\.json' is damaged \(not the file a run writes\); restore it from a backup or start a new run\."),
    ("stage-weights-truncated", truncated_stage_weights, RESUME, rf"checkpoint {CK}stage-0\.safetensors' is corrupt or truncated \(SafetensorError\); {RESTORE}"),
    ("stage-weights-of-another-model", foreign_stage_weights, RESUME, rf"checkpoint {CK}stage-0\.safetensors' does not fit this config's model \(missing \[.*\], unexpected \['encoder\.weight'\]\); resume with the config the run was started with\."),
    ("run-config-damaged", damaged_run_config, RESUME, r"'[^']*/runs/r/config\.yaml' is damaged \(not the file a run writes\); restore it from a backup or start a new run\."),
    ("resume-a-folder-mona-kit-did-not-make", foreign_folder_with_a_config, ["run", "--resume", "{tmp}/mine"],
     r"'[^']*/mine' holds a config\.yaml but is not a folder mona-kit made \(no \.mona-kit-run file\); --resume continues only runs mona-kit started - start a new run with that config instead\."),
    ("resume-lr-given-twice", killed_run, RESUME + ["train.lr=1e-3", "train.lr=1e-4"],
     r"train\.lr is given twice \(train\.lr=1e-3, train\.lr=1e-4\); keep the one you mean\."),
    ("run-env-damaged", damaged_env, RESUME, r"'[^']*/runs/r/env\.json' is damaged \(not the file a run writes\); restore it from a backup or start a new run\."),
    ("checkpoint-other-plugin-version", other_plugin_version, RESUME, r"run '[^']*/runs/r' was made with plugin toy_plugin 9\.9\.9, now [^;]+; install that version to resume, or start a new run\."),
]


class Ctx:
    def __init__(self, tmp, monkeypatch, kit):
        self.tmp, self.monkeypatch, self.kit = tmp, monkeypatch, kit
        self.kit_factory = None


def disk_state(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_matrix_has_enough_cases():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,setup,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, setup, argv, expected, bad_kit, tmp_path, monkeypatch, capsys):
    import mona_kit.kit

    ctx = Ctx(tmp_path, monkeypatch, bad_kit)
    if setup is not None:
        setup(ctx)
    make_kit = ctx.kit_factory or (lambda: bad_kit)
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: make_kit())
    capsys.readouterr()
    before = disk_state(tmp_path)

    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mona-kit: error: ")
    message = err[len("mona-kit: error: ") : -1]
    assert __import__("re").fullmatch(expected, message), message

    after = disk_state(tmp_path)
    assert not (tmp_path / "PWNED").exists()  # no checkpoint or weights file ran code on load
    for name, data in before.items():  # nothing lost or changed (the event log may only grow)
        assert name in after, f"{name} was deleted"
        if name.endswith("metrics.jsonl"):
            assert after[name].startswith(data)
        else:
            assert after[name] == data, f"{name} was changed"
    assert set(after) == set(before), f"new files: {sorted(set(after) - set(before))}"


@pytest.mark.parametrize("override,expected", [
    ("task=toy-sq", "unknown dataset 'toy-sq'"), ("backbone=toy-bdy", "unknown backbone 'toy-bdy'"),
    ("task.nope=1", "has no option 'nope'"), ("embedder=toy-emb-typo", "unknown embedder 'toy-emb-typo'"),
    ("head=toy-head-typo", "unknown head 'toy-head-typo'"), ("source=toy-src-typo", "unknown dataset 'toy-src-typo'")])
def test_a_bad_name_or_option_fails_before_the_run_is_announced(override, expected, bad_kit, tmp_path, monkeypatch, capsys):
    """A typo in any component is refused before the run's '== METHOD on TASK' header is printed (a typo
    in the source once let the first of several methods train to the end before the second failed)."""
    import mona_kit.kit

    ctx = Ctx(tmp_path, monkeypatch, bad_kit)
    plain_cfg(ctx)
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: bad_kit)
    capsys.readouterr()
    assert cli.main([a.format(tmp=tmp_path) for a in RUN] + [override]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("mona-kit: error: ") and err.count("\n") == 1, (out, err)
    assert expected in err, err
