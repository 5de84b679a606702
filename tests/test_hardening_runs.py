"""Run directories, locks, resume and checkpoints under hostile input (issue 11): --overwrite never
deletes a folder mona-kit did not make, run names never leave output_dir, one process writes a run
at a time, resume refuses an edited config and any override but a learning rate after a non-finite
stop, damaged records and checkpoints are one line naming the file (and line), full disks are one
line with nothing half-written, metrics.jsonl is cut back to the checkpoint on resume.

The table follows tests/test_bad_input.py: each case runs the CLI in-process and must give exit 2,
exactly one stderr line matching its pattern, and leave every file on disk as it was.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from test_faults import ARMED, fault_plugin  # the toy embedder whose gradients turn NaN when armed

import mona_kit.cli as cli
from mona_kit.atomic_io import io_failure_reason
from mona_kit.errors import CheckpointError, MonaError, NumericalError
from mona_kit.runs import LOCK, MARKER, RunDir, RunLock, check_run_name, run_path

# --- a kit with the toy components and the NaN-gradient embedder ----------------------------------


@pytest.fixture
def kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    ARMED["on"] = False
    yield load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=[toy_plugin, fault_plugin])
    ARMED["on"] = False


@pytest.fixture
def cli_kit(kit, monkeypatch):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    return kit


BASE = {
    "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text", "method": "finetune",
    "embedder": "nan-grad-embed", "train": {"epochs": 2, "batch_size": 8}, "checkpoint_every": 1,
}


def plain(tmp, **changes):
    return {**BASE, "output_dir": str(tmp / "runs"), "run_name": "r", **changes}


def config(tmp, **changes):
    from mona_kit.runconfig import RunConfig

    return RunConfig.from_dict(plain(tmp, **changes))


class Killed(BaseException):
    """Stands in for SIGKILL: unwinds through every ``except Exception``."""


def kill_after(monkeypatch, stage, step):
    from mona_kit.engine import Session

    original = Session.log

    def log(self, **event):
        original(self, **event)
        if event.get("stage") == stage and event.get("step") == step and "loss" in event:
            raise Killed()

    monkeypatch.setattr(Session, "log", log)
    return lambda: monkeypatch.setattr(Session, "log", original)


def losses(run_dir):
    return [(e["stage"], e["step"]) for e in RunDir(run_dir).events() if "loss" in e and "split" not in e and "step" in e]


# --- setups for the table ------------------------------------------------------------------------


class Ctx:
    def __init__(self, tmp, monkeypatch, kit):
        self.tmp, self.monkeypatch, self.kit = tmp, monkeypatch, kit
        self.locks: list[RunLock] = []

    @property
    def run_dir(self):
        return self.tmp / "runs" / "r"


def write_cfg(ctx, **changes):
    (ctx.tmp / "cfg.yaml").write_text(yaml.safe_dump(plain(ctx.tmp, **changes)))


def finished(ctx, name="r"):
    from mona_kit.runner import run

    write_cfg(ctx)
    # checkpoints="all": the tests rewind progress.json to stand for a kill, so every stage's files must stay.
    return run(ctx.kit, config(ctx.tmp, run_name=name, train={"epochs": 1, "batch_size": 16}), progress=False,
               checkpoints="all")


def killed(ctx, after=3):
    """Killed at step ``after`` of fine-tuning; a mid-stage checkpoint holds step ``after``."""
    from mona_kit.runner import run

    write_cfg(ctx)
    undo = kill_after(ctx.monkeypatch, "finetune", after)
    with pytest.raises(Killed):
        run(ctx.kit, config(ctx.tmp), progress=False)
    undo()
    return ctx.run_dir


def nan_stopped(ctx):
    """Stopped by a NaN gradient at the first step: nothing of the stage was saved."""
    from mona_kit.runner import run

    write_cfg(ctx)
    ARMED["on"] = True
    with pytest.raises(NumericalError):
        run(ctx.kit, config(ctx.tmp), progress=False)
    ARMED["on"] = False
    return ctx.run_dir


def finished_but_evaluate(ctx):
    path = finished(ctx)
    (path / "results.json").unlink()
    (path / "checkpoints" / "progress.json").write_text(json.dumps({"done": ["finetune"]}))
    return path


def slot(run_dir, suffix):
    pointer = json.loads((run_dir / "checkpoints" / "stage-0-latest.json").read_text())
    return run_dir / "checkpoints" / f"stage-0-{pointer['slot']}{suffix}"


def user_folder(ctx, name="victim2"):
    write_cfg(ctx)
    folder = ctx.tmp / "runs" / name
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")


def sibling_run(ctx):
    """output_dir holds a finished run beside the one the command names."""
    finished(ctx, name="sibling")


def outside_victim(ctx):
    write_cfg(ctx)
    (ctx.tmp / "victim").mkdir()
    (ctx.tmp / "victim" / "data.csv").write_text("1,2,3")


def symlinked_run_name(ctx):
    """runs/link points at a folder outside output_dir that holds a (forged) mona-kit marker."""
    outside_victim(ctx)
    (ctx.tmp / "victim" / MARKER).write_text('{"made_by": "mona-kit"}')
    (ctx.tmp / "runs").mkdir(exist_ok=True)
    (ctx.tmp / "runs" / "link").symlink_to(ctx.tmp / "victim")


def old_run_without_marker(ctx):
    path = finished(ctx)
    (path / MARKER).unlink()


def hold_lock(setup):
    """``setup``, then hold the run's lock as a live writer would."""
    def go(ctx):
        setup(ctx)
        ctx.locks.append(RunLock(ctx.run_dir).acquire())
    return go


def edit_config(ctx):
    path = finished_but_evaluate(ctx)
    text = (path / "config.yaml").read_text()
    (path / "config.yaml").write_text(text.replace("epochs: 1", "epochs: 5"))


def forged_hash(ctx):
    path = finished_but_evaluate(ctx)
    env = json.loads((path / "env.json").read_text())
    (path / "env.json").write_text(json.dumps(env | {"config_sha256": "0" * 64}))


def damaged_overrides(ctx):
    path = nan_stopped(ctx)
    env = json.loads((path / "env.json").read_text())
    (path / "env.json").write_text(json.dumps(env | {"resume_overrides": "train.lr=1"}))


def metrics_with(line: bytes, at: int = 1):
    def go(ctx):
        path = nan_stopped(ctx)
        lines = (path / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        lines.insert(at, line)
        (path / "metrics.jsonl").write_bytes(b"".join(lines))
    return go


def finished_metrics_with(line: bytes):
    def go(ctx):
        path = finished(ctx)
        lines = (path / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        lines.insert(2, line)
        (path / "metrics.jsonl").write_bytes(b"".join(lines))
    return go


def partial_results(text):
    def go(ctx):
        (finished_but_evaluate(ctx) / "checkpoints" / "results-partial.json").write_text(text)
    return go


def damaged_results_json(ctx):
    (finished(ctx) / "results.json").write_text('{"method": "finetune", "val": ')


def progress_with(data):
    def go(ctx):
        (finished_but_evaluate(ctx) / "checkpoints" / "progress.json").write_text(json.dumps(data))
    return go


def _resave(path, change):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def stage_weights_wrong_shape(ctx):
    path = finished_but_evaluate(ctx) / "checkpoints" / "stage-0.safetensors"
    _resave(path, lambda t: t.update({"head.fc.weight": torch.zeros(7, 5)}))


def stage_weights_nan(ctx):
    path = finished_but_evaluate(ctx) / "checkpoints" / "stage-0.safetensors"
    _resave(path, lambda t: t.update({k: torch.full_like(v, float("nan")) for k, v in t.items() if v.is_floating_point()}))


def slot_weights_wrong_shape(ctx):
    _resave(slot(killed(ctx), ".safetensors"), lambda t: t.update({"model.head.fc.weight": torch.zeros(7, 5)}))


def slot_weights_missing_tensor(ctx):
    _resave(slot(killed(ctx), ".safetensors"), lambda t: t.pop("model.head.fc.weight"))


def best_weights_partial(ctx):
    _resave(slot(killed(ctx), ".safetensors"), lambda t: t.update({"best.head.fc.weight": torch.zeros(1)}))


def slot_state_with(change):
    def go(ctx):
        path = slot(killed(ctx), ".pt")
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)
    return go


def start_state(value):
    def go(ctx):
        torch.save(value, killed(ctx) / "checkpoints" / "stage-0-start.pt")
    return go


def _numpy_wrong(state):
    state["rng"]["numpy"] = ["MT19937", torch.zeros(3, dtype=torch.int64), 0, 0, 0.0]


def _torch_wrong(state):
    state["rng"]["torch"] = torch.zeros(5, dtype=torch.uint8)


def _python_wrong(state):
    state["rng"]["python"] = "not a random state"


R = "{tmp}/runs/r"
CFG = "{tmp}/cfg.yaml"
RUN = ["run", CFG, "--no-progress", "--no-plots"]
RESUME = ["run", "--resume", R, "--no-progress"]
PLOT = ["plot", R, "--out", "{tmp}/plots"]
P = "'[^']*"
NOT_PLAIN = r"is not a plain folder name \(no '/', '\\', '\.\.' or absolute paths\); the run directory always lies inside output_dir - set output_dir for another place\."
NOT_MINE = rf"--overwrite refused: {P}/runs/(victim2|r)' is not a folder mona-kit made \(no \.mona-kit-run file\), so it is never deleted; choose another run_name, or move the folder away yourself\."
IN_USE = rf"run directory {P}/runs/r' is in use by process {os.getpid()} on host [^ ]+ \(since [^)]+\); wait for it to finish or stop it, then retry \(two writers would mix their records\)\."
EDITED = rf"{P}/runs/r/config\.yaml' was edited after the run started \(its hash no longer matches env\.json\); resuming would mix two configs - restore the file, or start a new run with the new config\."
NO_OVERRIDE = r"run --resume takes no '{}': a resumed run keeps the config it started with \(changing it would give a hybrid run\); only a learning rate \(train\.lr, train\.embedder_lr, method\.inner_lr, method\.meta_lr, method\.align_lr, method\.head_lr, method\.label_lr\) may change, after a non-finite stop\. Start a new run for other settings\."
DAMAGED = rf"{P}/runs/r/{{}}' is damaged \(not the file a run writes\); restore it from a backup or start a new run\."
LINE = rf"{P}/runs/r/metrics\.jsonl' line {{}} is damaged \(not an event a run writes\); delete that line \(or restore the file from a backup\) and retry\."
RESTORE = r"restore the file from a backup or start a new run with the same config\."
CK = rf"checkpoint {P}/runs/r/checkpoints/"
RNG = rf"{CK}stage-0-{{}}\.pt' holds a damaged RNG state \(\w+\); {RESTORE}"

CASES = [
    # run_name: one plain folder name inside output_dir (groups 1, 2)
    ("run-name-dot-overwrite-keeps-siblings", sibling_run, RUN + ["run_name=.", "--overwrite"], rf"run_name '\.' {NOT_PLAIN}"),
    ("run-name-dotdot", write_cfg, RUN + ["run_name=.."], rf"run_name '\.\.' {NOT_PLAIN}"),
    ("run-name-parent", write_cfg, RUN + ["run_name=../x"], rf"run_name '\.\./x' {NOT_PLAIN}"),
    ("run-name-escape-overwrite", outside_victim, RUN + ["run_name=../../victim", "--overwrite"], rf"run_name '\.\./\.\./victim' {NOT_PLAIN}"),
    ("run-name-absolute", outside_victim, RUN + ["run_name={tmp}/victim", "--overwrite"], rf"run_name '/[^']*/victim' {NOT_PLAIN}"),
    ("run-name-nested", write_cfg, RUN + ["run_name=a/b"], rf"run_name 'a/b' {NOT_PLAIN}"),
    ("run-name-backslash", write_cfg, RUN + ["run_name=a\\b"], rf"run_name 'a\\\\b' {NOT_PLAIN}"),
    ("run-name-empty", write_cfg, RUN + ["run_name="], r"run_name '' is empty; give a folder name such as run_name=my-run\."),
    ("run-name-blank", write_cfg, RUN + ["run_name=' '"], r"run_name ' ' is empty; give a folder name such as run_name=my-run\."),
    ("run-name-control-char", lambda ctx: write_cfg(ctx, run_name="a\nb"), RUN, r"run_name 'a\\nb' holds control characters; use a plain folder name\."),
    ("run-name-symlink-out", symlinked_run_name, RUN + ["run_name=link"], rf"run directory {P}/runs/link' resolves to {P}/victim', outside output_dir {P}/runs' \(a symlink or '\.\.'\); choose another run_name or output_dir\."),
    ("run-name-symlink-out-overwrite", symlinked_run_name, RUN + ["run_name=link", "--overwrite"], rf"run directory {P}/runs/link' resolves to {P}/victim', outside output_dir {P}/runs' \(a symlink or '\.\.'\); choose another run_name or output_dir\."),
    # --overwrite replaces only what mona-kit made (group 1)
    ("overwrite-user-folder", user_folder, RUN + ["run_name=victim2", "--overwrite"], NOT_MINE),
    ("overwrite-run-without-marker", old_run_without_marker, RUN + ["--overwrite"], NOT_MINE),
    ("existing-run-without-overwrite", lambda ctx: finished(ctx), RUN, rf"run directory {P}/runs/r' already exists; pass --overwrite \(in Python: fit\(\.\.\., overwrite=True\)\) to replace it, continue it with 'mona-kit run --resume [^ ]*/runs/r', or choose another run_name\."),
    # one writer per run folder (group 7)
    ("overwrite-a-live-run", hold_lock(killed), RUN + ["--overwrite"], IN_USE),
    ("resume-a-live-run", hold_lock(killed), RESUME, IN_USE),
    ("resume-a-live-finished-run", hold_lock(finished), RESUME, IN_USE),
    # --methods: every target checked before the first trains (group 12)
    ("methods-share-run-name", write_cfg, RUN + ["--methods", "finetune,linear-probe"], r"run_name=r names one folder, but 2 methods would run \(finetune, linear-probe\); drop run_name \(each run gets its own name\) or run the methods one at a time\."),
    ("methods-twice", write_cfg, RUN + ["--methods", "finetune,finetune", "run_name=null"], r"--methods 'finetune,finetune' names finetune twice; list each of the method names once\."),
    # resume: the recorded config, its hash, and no overrides but a learning rate after a stop (groups 5, 11)
    ("resume-hand-edited-config", edit_config, RESUME, EDITED),
    ("resume-forged-hash", forged_hash, RESUME, EDITED),
    ("resume-override-epochs", killed, RESUME + ["train.epochs=9"], NO_OVERRIDE.format(r"train\.epochs=9")),
    ("resume-override-method", killed, RESUME + ["method=mona"], NO_OVERRIDE.format("method=mona")),
    ("resume-override-seed", nan_stopped, RESUME + ["seed=3"], NO_OVERRIDE.format("seed=3")),
    ("resume-override-lr-and-more", nan_stopped, RESUME + ["train.lr=0.0001", "train.batch_size=4"], NO_OVERRIDE.format(r"train\.batch_size=4")),
    ("resume-lr-without-a-stop", killed, RESUME + ["train.lr=0.0001"], r"run --resume [^ ]*/runs/r train\.lr=0\.0001: a learning rate may change on resume only after the run stopped on a non-finite loss or gradient, and this one did not; resume without it\."),
    ("resume-with-config-file", killed, RESUME + [CFG], rf"run --resume takes no config file \({P}/cfg\.yaml'\): the run directory holds its config; start a new run to use another\."),
    ("resume-with-overwrite", killed, RESUME + ["--overwrite"], r"run --resume continues one run as it was started; it takes no --overwrite\."),
    ("resume-with-methods", killed, RESUME + ["--methods", "finetune"], r"run --resume continues one run as it was started; it takes no --methods\."),
    ("resume-overrides-record-damaged", damaged_overrides, RESUME + ["train.lr=0.0001"], DAMAGED.format(r"env\.json")),
    # damaged records, by file and line (group 10)
    ("metrics-garbage-line", metrics_with(b"{not json\n"), RESUME + ["train.lr=0.0001"], LINE.format(2)),
    ("metrics-not-an-object", metrics_with(b"[1, 2]\n", at=2), RESUME + ["train.lr=0.0001"], LINE.format(3)),
    ("metrics-not-utf8", metrics_with(b'{"x": "\xff\xfe"}\n', at=0), RESUME + ["train.lr=0.0001"], LINE.format(1)),
    ("metrics-damaged-plot", finished_metrics_with(b"\x00\x00\x00\n"), PLOT, LINE.format(3)),
    ("results-json-damaged-plot", damaged_results_json, PLOT, DAMAGED.format(r"results\.json")),
    ("results-partial-not-json", partial_results("{cut"), RESUME, DAMAGED.format(r"checkpoints/results-partial\.json")),
    ("results-partial-split-not-a-mapping", partial_results('{"val": 5}'), RESUME, DAMAGED.format(r"checkpoints/results-partial\.json")),
    ("progress-done-not-names", progress_with({"done": [1]}), RESUME, DAMAGED.format(r"checkpoints/progress\.json")),
    # checkpoints of the wrong shape, malformed RNG states (group 10)
    ("stage-weights-wrong-shape", stage_weights_wrong_shape, RESUME, rf"{CK}stage-0\.safetensors': tensor 'head\.fc\.weight' has shape \[7, 5\], this config's model needs \[3, \d+\]; resume with the config the run was started with, or {RESTORE}"),
    ("slot-weights-wrong-shape", slot_weights_wrong_shape, RESUME, rf"{CK}stage-0-[ab]\.safetensors': tensor 'head\.fc\.weight' has shape \[7, 5\], this config's model needs \[3, \d+\]; resume with the config the run was started with, or {RESTORE}"),
    ("slot-best-weights-partial", best_weights_partial, RESUME, rf"{CK}stage-0-[ab]\.safetensors' does not fit this config's model \(missing \['body\..*\], unexpected \[\]\); resume with the config the run was started with\."),
    ("slot-weights-missing-tensor", slot_weights_missing_tensor, RESUME, rf"{CK}stage-0-[ab]\.safetensors' does not fit this config's model \(missing \['head\.fc\.weight'\], unexpected \[\]\); resume with the config the run was started with\."),
    ("slot-rng-missing", slot_state_with(lambda s: s.pop("rng")), RESUME, RNG.format("[ab]")),
    ("slot-rng-numpy-malformed", slot_state_with(_numpy_wrong), RESUME, RNG.format("[ab]")),
    ("slot-rng-torch-malformed", slot_state_with(_torch_wrong), RESUME, RNG.format("[ab]")),
    ("slot-rng-python-malformed", slot_state_with(_python_wrong), RESUME, RNG.format("[ab]")),
    ("start-rng-malformed", start_state({"rng": {"torch": "x"}}), RESUME, RNG.format("start")),
    ("start-state-not-a-mapping", start_state([1, 2, 3]), RESUME, RNG.format("start")),
    # weights that are NaN are not evaluated (group 12)
    ("evaluate-nan-weights", stage_weights_nan, RESUME, rf"the model to evaluate \(checkpoint {P}/runs/r/checkpoints/stage-0\.safetensors'\) holds NaN or Inf in \d+ of \d+ parameter tensors \(first: '[^']+'\); its metrics would be meaningless - start a new run with a lower train\.lr \(or train\.grad_clip\)\."),
]


def disk_state(folder):
    """Every file's bytes (a symlink: its target), so a test sees any change, deletion or addition."""
    return {
        str(p.relative_to(folder)): (b"-> " + os.readlink(p).encode()) if p.is_symlink() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def test_the_table_has_enough_cases():
    assert len(CASES) >= 35 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,setup,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, setup, argv, expected, cli_kit, tmp_path, monkeypatch, capsys):
    ctx = Ctx(tmp_path, monkeypatch, cli_kit)
    monkeypatch.chdir(tmp_path)
    try:
        setup(ctx)
        capsys.readouterr()
        before = disk_state(tmp_path)
        assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
        err = capsys.readouterr().err
        after = disk_state(tmp_path)
    finally:
        for lock in ctx.locks:
            lock.release()
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mona-kit: error: ")
    message = err[len("mona-kit: error: ") : -1]
    assert re.fullmatch(expected, message), message
    assert after == before, f"changed: {sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))}"


# --- run names, output_dir, --overwrite ------------------------------------------------------------


@pytest.mark.parametrize("name", ["r", "seed0", "mona-gunpoint-s0-20240101-120000", "a.b", "x y", "..a", "a.."])
def test_plain_run_names_pass(name):
    assert check_run_name(name) == name


def test_output_dir_expands_the_home_folder(kit, tmp_path, monkeypatch):
    from mona_kit.runner import run

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = run(kit, config(tmp_path, output_dir="~/x", train={"epochs": 1, "batch_size": 16}), progress=False)
    assert path == tmp_path / "home" / "x" / "r" and (path / "results.json").is_file()
    assert not (tmp_path / "~").exists()
    assert run_path("~/x", "r") == tmp_path / "home" / "x" / "r"


def test_overwrite_replaces_a_run_mona_kit_made(kit, tmp_path):
    from mona_kit.runner import run

    first = run(kit, config(tmp_path, train={"epochs": 1, "batch_size": 16}), progress=False)
    (first / "stale-note.txt").write_text("from the first run")
    second = run(kit, config(tmp_path, seed=1, train={"epochs": 1, "batch_size": 16}), overwrite=True, progress=False)
    assert second == first and not (second / "stale-note.txt").exists()
    assert json.loads((second / "results.json").read_text())["seed"] == 1
    assert json.loads((second / MARKER).read_text())["made_by"] == "mona-kit"
    assert (second / LOCK).read_text() == ""  # released: nobody holds it


def test_a_half_made_cell_folder_is_reused(kit, tmp_path):
    """A sweep cell killed before config.yaml leaves only mona-kit's own files: the next run takes the
    folder without --overwrite (and with it, as sweeps pass)."""
    from mona_kit.runner import run

    folder = tmp_path / "runs" / "r"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text('{"made_by": "mona-kit"}\n')
    (folder / LOCK).write_text('{"pid": 1}')
    path = run(kit, config(tmp_path, train={"epochs": 1, "batch_size": 16}), progress=False)
    assert (path / "results.json").is_file()


def test_sweep_cells_overwrite_through_the_cli(cli_kit, tmp_path, capsys):
    """What a sweep does with a started-but-unresumable cell: run CONFIG --overwrite on mona-kit's folder."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(plain(tmp_path, train={"epochs": 1, "batch_size": 16})))
    argv = ["run", str(cfg), "--no-progress", "--no-plots", "--overwrite"]
    assert cli.main(argv) == 0 and cli.main(argv) == 0
    assert (tmp_path / "runs" / "r" / "results.json").is_file()


# --- Ctrl-C -------------------------------------------------------------------------------------------


def test_ctrl_c_names_the_folder_to_resume(cli_kit, tmp_path, capsys, monkeypatch):
    """The line after Ctrl-C is the command that continues the run, with its folder (auto-named runs
    have a timestamp the user cannot guess), and that command finishes it."""
    from mona_kit.engine import Session

    original_log = Session.log

    def interrupted_log(self, **event):
        original_log(self, **event)
        if event.get("step") == 2 and "loss" in event:
            raise KeyboardInterrupt

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**plain(tmp_path, train={"epochs": 2, "batch_size": 8}), "run_name": "my run"}))
    monkeypatch.setattr(Session, "log", interrupted_log)
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 130
    err = capsys.readouterr().err
    folder = tmp_path / "runs" / "my run"
    assert err == f"mona-kit: interrupted; the run is checkpointed: continue it with mona-kit run --resume '{folder}'\n"
    # Interrupted again before the resumed run gets going: still the same run to continue.
    import mona_kit.runner

    def interrupted_prepare(*args, **kwargs):
        raise KeyboardInterrupt

    real_prepare = mona_kit.runner._prepare
    monkeypatch.setattr(mona_kit.runner, "_prepare", interrupted_prepare)
    assert cli.main(["run", "--resume", str(folder), "--no-progress", "--no-plots"]) == 130
    assert capsys.readouterr().err == err
    monkeypatch.setattr(mona_kit.runner, "_prepare", real_prepare)
    monkeypatch.setattr(Session, "log", original_log)
    assert cli.main(["run", "--resume", str(folder), "--no-progress", "--no-plots"]) == 0
    assert (folder / "results.json").is_file()


def test_ctrl_c_before_the_run_folder_exists_says_nothing_was_written(cli_kit, tmp_path, capsys, monkeypatch):
    import mona_kit.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mona_kit.runner, "_prepare", interrupted)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(plain(tmp_path)))
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 130
    assert capsys.readouterr().err == "mona-kit: interrupted before the run started: nothing of it was written.\n"
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_after_the_run_finished_claims_nothing(cli_kit, tmp_path, capsys, monkeypatch):
    """Interrupted while the comparison table prints: the run is finished, so neither "resume" nor
    "nothing was written" is true; the line says only that it was interrupted."""
    import mona_kit.summary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mona_kit.summary, "comparison_table", interrupted)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(plain(tmp_path, train={"epochs": 1, "batch_size": 16})))
    capsys.readouterr()
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 130
    assert capsys.readouterr().err == "mona-kit: interrupted.\n"
    assert (tmp_path / "runs" / "r" / "results.json").is_file()


def test_ctrl_c_in_a_sweep_says_the_sweep_resumes(cli_kit, tmp_path, capsys, monkeypatch):
    import mona_kit.sweep_profile

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mona_kit.sweep_profile, "read_profile", interrupted)
    assert cli.main(["sweep", str(tmp_path / "p.yaml")]) == 130
    assert "the same sweep command resumes them" in capsys.readouterr().err


# --- the lock ----------------------------------------------------------------------------------------


def test_the_lock_dies_with_its_process(tmp_path):
    """kill -9 of the writer frees the run: the kernel drops an flock with its process."""
    folder = tmp_path / "run"
    folder.mkdir()
    code = (
        "import sys, time; from mona_kit.runs import RunLock; "
        f"RunLock({str(folder)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(MonaError, match=rf"in use by process {proc.pid} on host "):
            RunLock(folder).acquire()
        with pytest.raises(MonaError, match="in use by"):
            RunLock(folder).probe()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lock = RunLock(folder).acquire()  # the dead holder's text is still there; the lock is free
    assert json.loads((folder / LOCK).read_text())["pid"] == os.getpid()
    lock.release()


def test_the_lock_is_released_when_a_run_fails(kit, tmp_path):
    from mona_kit.runner import run

    ARMED["on"] = True
    with pytest.raises(NumericalError):
        run(kit, config(tmp_path), progress=False)
    ARMED["on"] = False
    RunLock(tmp_path / "runs" / "r").acquire().release()


# --- resume: hash, overrides after a non-finite stop ------------------------------------------------


def test_nan_at_the_first_step_says_nothing_was_saved(kit, tmp_path):
    from mona_kit.runner import run

    ARMED["on"] = True
    with pytest.raises(NumericalError) as info:
        run(kit, config(tmp_path), progress=False)
    message = str(info.value)
    assert "Kept: nothing - no stage had finished and no checkpoint of this stage was due yet." in message
    assert f"mona-kit run --resume {tmp_path / 'runs' / 'r'} train.lr=VALUE (restarts stage 'finetune' from the start of the run)." in message
    assert "last good checkpoint" not in message
    assert not list((tmp_path / "runs" / "r" / "checkpoints").glob("stage-0-latest.json"))


def test_nan_after_a_finished_stage_names_its_checkpoint(kit, tmp_path, monkeypatch):
    """Linear probe (stage 'linear-probe') of MoNA-free methods is one stage; FPT-like two-stage runs
    name the finished one. mona with warm-up: NaN in meta-align after warm-up finished."""
    from mona_kit.engine import Session
    from mona_kit.runner import run

    original = Session.log

    def log(self, **event):
        original(self, **event)
        if event.get("event") == "stage-end" and event.get("stage") == "warmup":
            ARMED["on"] = True

    monkeypatch.setattr(Session, "log", log)
    method = {"name": "mona", "objective": "toy-align-uniform", "meta_steps": 4, "warmup": "task"}
    with pytest.raises(NumericalError) as info:
        run(kit, config(tmp_path, method=method, checkpoint_every=100), progress=False)
    assert "Kept: the checkpoint of finished stage 'warmup'; nothing of this stage was saved" in str(info.value)
    assert "(restarts stage 'meta-align' from the end of stage 'warmup')." in str(info.value)


def test_resume_with_a_lower_lr_after_a_stop(cli_kit, tmp_path, capsys):
    """The advised command is accepted, applied to the stopped stage (restarted) and recorded; a
    later resume still passes the hash check and keeps the change."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(plain(tmp_path)))
    run_dir = tmp_path / "runs" / "r"
    ARMED["on"] = True
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 2
    ARMED["on"] = False
    recorded = (run_dir / "config.yaml").read_text()
    assert cli.main(["run", "--resume", str(run_dir), "--no-progress", "train.lr=0.0001"]) == 0
    env = json.loads((run_dir / "env.json").read_text())
    [change] = env["resume_overrides"]
    assert (change["set"], change["key"], change["value"], change["from_stage"]) == ("train.lr=0.0001", "train.lr", 0.0001, "finetune")
    assert change["was"] == yaml.safe_load(recorded)["train"]["lr"]
    assert (run_dir / "config.yaml").read_text() == recorded  # the started config, unchanged
    steps = losses(run_dir)
    assert steps == [("finetune", s) for s in range(1, 9)]  # the stopped attempt's lines were cut
    assert cli.main(["run", "--resume", str(run_dir), "--no-progress"]) == 0  # hash and record agree
    assert len(json.loads((run_dir / "env.json").read_text())["resume_overrides"]) == 1


def test_lr_change_restarts_the_stage_from_its_start(kit, tmp_path, monkeypatch):
    """NaN at step 4 with a checkpoint at step 3: the rate changes for the whole stopped stage, so it
    restarts from its start (the step-3 checkpoint was made at the old rate) - same result as a run
    that used the new rate from the stage's start."""
    from mona_kit.engine import Session
    from mona_kit.runner import run

    original = Session.log

    def log(self, **event):
        original(self, **event)
        if event.get("stage") == "finetune" and event.get("step") == 3 and "loss" in event:
            ARMED["on"] = True

    monkeypatch.setattr(Session, "log", log)
    with pytest.raises(NumericalError, match="Kept: this stage's checkpoint at step 3"):
        run(kit, config(tmp_path), progress=False)
    monkeypatch.setattr(Session, "log", original)
    ARMED["on"] = False
    path = run(kit, config(tmp_path), progress=False, resume=tmp_path / "runs" / "r", overrides=["train.lr=0.0005"])
    events = RunDir(path).events()
    assert not any(e.get("event") == "resumed" for e in events)
    reference = run(kit, config(tmp_path, run_name="ref", train={"epochs": 2, "batch_size": 8, "lr": 0.0005}), progress=False)
    got, want = (json.loads((p / "results.json").read_text()) for p in (path, reference))
    assert (got["val"], got["test"]) == (want["val"], want["test"])


def test_resume_accepts_a_reformatted_config(kit, tmp_path):
    """The hash covers values, not formatting: a comment or reordering is no edit."""
    from mona_kit.runner import run

    ctx = Ctx(tmp_path, None, kit)
    path = finished_but_evaluate(ctx)
    data = yaml.safe_load((path / "config.yaml").read_text())
    (path / "config.yaml").write_text("# my notes\n" + yaml.safe_dump(dict(reversed(list(data.items())))))
    run(kit, config(tmp_path, train={"epochs": 1, "batch_size": 16}), progress=False, resume=path)
    assert (path / "results.json").is_file()


def test_resume_of_a_run_from_before_hashes(kit, tmp_path):
    """A run made before env.json held a config hash still resumes."""
    from mona_kit.runner import run

    ctx = Ctx(tmp_path, None, kit)
    path = finished_but_evaluate(ctx)
    env = json.loads((path / "env.json").read_text())
    env.pop("config_sha256")
    (path / "env.json").write_text(json.dumps(env))
    run(kit, config(tmp_path, train={"epochs": 1, "batch_size": 16}), progress=False, resume=path)
    assert (path / "results.json").is_file()


# --- metrics.jsonl cut back to the checkpoint ------------------------------------------------------


def test_resume_does_not_repeat_steps_in_metrics(kit, tmp_path, monkeypatch):
    from mona_kit.runner import run

    undo = kill_after(monkeypatch, "finetune", 6)
    with pytest.raises(Killed):
        run(kit, config(tmp_path, checkpoint_every=4), progress=False)
    undo()
    run_dir = tmp_path / "runs" / "r"
    assert losses(run_dir)[-1] == ("finetune", 6)
    run(kit, config(tmp_path, checkpoint_every=4), progress=False, resume=run_dir)
    assert losses(run_dir) == [("finetune", s) for s in range(1, 9)]  # 5 and 6 once, not twice
    events = RunDir(run_dir).events()
    kept = [e.get("event") for e in events if e.get("stage") == "finetune" and e.get("event") in ("stage-start", "resumed")]
    assert kept == ["stage-start", "stage-start", "resumed"]  # the killed attempt's start, the resumed one's


def test_a_line_cut_by_a_kill_is_dropped_on_resume(kit, tmp_path, monkeypatch):
    """A kill mid-write leaves half a line at the end; events() skips it, resume cuts it away."""
    from mona_kit.runner import run

    run_dir = killed(Ctx(tmp_path, monkeypatch, kit))
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"stage": "finetune", "st')
    assert losses(run_dir)[-1] == ("finetune", 3)
    run(kit, config(tmp_path), progress=False, resume=run_dir)
    assert losses(run_dir) == [("finetune", s) for s in range(1, 9)]


# --- full disks and other write errors --------------------------------------------------------------


def _fail_nth_write(monkeypatch, target, n, exc, *, partial=True):
    """Make the ``n``-th call of ``target`` (module, name) write half a file, then raise ``exc``."""
    module, name = target
    real = getattr(module, name)
    calls = {"n": 0}

    def writer(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            if partial:
                with open(path, "wb") as fh:
                    fh.write(b"\x00" * 100)
            raise exc
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(module, name, writer)


@pytest.mark.parametrize("writer,exc,reason", [
    ("safetensors", "SafetensorError", "No space left on device"),
    ("safetensors", "SafetensorError-efbig", "File too large"),
    ("torch.save", "RuntimeError", r"the write failed \(RuntimeError: \[enforce fail at inline_container\.cc:672\] \. unexpected pos 704 vs 598\)"),
])
def test_a_full_disk_in_a_writer_library_is_one_line(cli_kit, tmp_path, monkeypatch, capsys, writer, exc, reason):
    """safetensors (Rust) and torch.save (C++) report a full disk in their own exception types: still
    one line, exit 2, no temporary file, the previous checkpoint intact, and the run resumes."""
    import safetensors
    import safetensors.torch

    import mona_kit.checkpoint as checkpoint

    error = {
        "SafetensorError": safetensors.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })"),
        "SafetensorError-efbig": safetensors.SafetensorError("Error while serializing: I/O error: File too large (os error 27)"),
        "RuntimeError": RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),
    }[exc]
    if writer == "safetensors":
        _fail_nth_write(monkeypatch, (safetensors.torch, "save_file"), 3, error)
    else:
        _fail_nth_write(monkeypatch, (checkpoint.torch, "save"), 4, error)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(plain(tmp_path)))
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(
        rf"mona-kit: error: cannot write '[^']*/runs/r/checkpoints/stage-0-[ab]\.(safetensors|pt)': {reason}; free disk space or make "
        r"the folder writable \(or choose another output_dir\)\. The previous version of the file is intact; resume with run --resume RUN_DIR\.\n",
        err,
    ), err
    run_dir = tmp_path / "runs" / "r"
    assert not list(run_dir.rglob("*.tmp"))
    monkeypatch.undo()
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: cli_kit)
    assert cli.main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    assert losses(run_dir) == [("finetune", s) for s in range(1, 9)]


def test_a_bug_in_a_writer_keeps_its_traceback():
    """Only I/O failures become the disk message; a TypeError is a bug and must stay visible."""
    assert io_failure_reason(TypeError("cannot pickle 'generator' object")) is None
    assert io_failure_reason(OSError(28, "No space left on device")) == "No space left on device"


def test_a_failed_event_write_leaves_no_half_line(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path)
    run_dir.log({"step": 1})
    real_open = open

    class Full:
        def __init__(self, *a, **k):
            self.fh = real_open(*a, **k)

        def __enter__(self):
            return self

        def write(self, text):
            self.fh.write(text[:5])
            self.fh.flush()
            raise OSError(28, "No space left on device")

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr("builtins.open", lambda path, mode="r", *a, **k: Full(path, mode, *a, **k) if mode == "a" else real_open(path, mode, *a, **k))
    with pytest.raises(MonaError, match=r"metrics\.jsonl': No space left on device"):
        run_dir.log({"step": 2})
    monkeypatch.undo()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_a_real_file_size_limit_is_one_line(tmp_path):
    """A real write failure inside safetensors' and torch's own writers (RLIMIT_FSIZE makes every
    write past the limit fail with EFBIG), in a fresh process: one line, exit 2, nothing half-written."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**plain(tmp_path), "embedder": "auto"}))
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY)); "
        "sys.path.insert(0, sys.argv[1]); import toy_plugin; import mona_kit.cli as cli; import mona_kit.kit as k; "
        "kit = k.load_kit(builtins=['mona_plugins.methods'], entry_points=False, extra=[toy_plugin]); "
        "k.load_kit = lambda *a, **kw: kit; sys.exit(cli.main(['run', sys.argv[2], '--no-progress', '--no-plots']))"
    )
    tests = os.path.dirname(__file__)
    proc = subprocess.run([sys.executable, "-c", code, tests, str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert re.match(r"mona-kit: error: cannot write '[^']*': (File too large|the write failed)", proc.stderr), proc.stderr
    assert not list((tmp_path / "runs").rglob("*.tmp"))


# --- checkpoints ------------------------------------------------------------------------------------


def test_rng_check_leaves_the_generators_as_they_were():
    from mona_kit.checkpoint import check_rng_state, rng_state

    torch.manual_seed(3)
    before = torch.get_rng_state().clone()
    good = rng_state()
    torch.manual_seed(4)
    check_rng_state(good, "x.pt")
    with pytest.raises(CheckpointError):
        check_rng_state({"torch": "x"}, "x.pt")
    torch.manual_seed(3)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_damaged_state_file_is_one_error_and_no_torch_warning(tmp_path):
    """Bytes that open like a protocol-4 pickle made torch warn before the one-line error; the user
    saw a UserWarning from torch's internals above mona-kit's message."""
    import warnings

    from mona_kit.checkpoint import load_state

    bad = tmp_path / "stage-0-a.pt"
    bad.write_bytes(b"\x80\x04garbage that is not a checkpoint")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="cannot be loaded safely"):
            load_state(bad)
    assert [str(w.message) for w in seen] == []
