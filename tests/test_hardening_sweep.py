"""Hardening of sweeps and plots (issue 11): bad profiles, labels and folders are one line, exit 2,
nothing written, before any cell trains; a failed cell makes the sweep exit 1; a sweep's cell dies
with it (kill -9); a moved sweep folder is the same sweep; a cell locked by a live run is left alone.

The bad-input table runs the CLI in-process (as tests/test_bad_input.py does): only checks run, so
no cell ever starts. The tests that need real cells start real ``mona-kit`` processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import mona_kit.cli as cli

ROOT = Path(__file__).resolve().parent.parent

GOOD = {
    "name": "t", "output": "{tmp}/out", "seeds": [0],
    "base": {"backbone": "tiny-bert", "train": {"epochs": 1, "batch_size": 16}},
    "tasks": {"gunpoint": {"task": "gunpoint"}},
    "methods": {"finetune": "finetune"},
}

# A results.json as a finished run writes it (the fields the report reads).
RESULTS = {"method": "finetune", "task": "gunpoint", "seed": 0, "metric": "zero-one-error", "higher_is_better": False,
           "val": {"zero-one-error": 0.4}, "test": {"zero-one-error": 0.5}, "wall_time_s": 3.0, "peak_memory_mb": 100.0}


class Ctx:
    def __init__(self, tmp: Path):
        self.tmp = tmp

    def profile(self, text: str | None = None, **changes) -> Path:
        path = self.tmp / "p.yaml"
        if text is None:
            data = {**GOOD, **changes}
            data = {k: v for k, v in data.items() if v is not DROP}
            text = yaml.safe_dump(data, sort_keys=False).replace("{tmp}", str(self.tmp))
        path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
        return path


DROP = object()


def prof(text=None, **changes):
    return lambda ctx: ctx.profile(text, **changes)


def finished_cell(ctx: Ctx, *, out: str = "out", method: str = "finetune", task: str = "gunpoint", seed: int = 0,
                  config: dict | None = None, results: dict | str | None = None) -> Path:
    """A cell folder as a finished sweep leaves it (seedN.yaml, results.json), without training."""
    cell = GOOD_CELL_CONFIG if config is None else config
    seed_dir = ctx.tmp / out / "cells" / method / task / f"seed{seed}"
    seed_dir.mkdir(parents=True)
    (seed_dir.parent / f"seed{seed}.yaml").write_text(
        yaml.safe_dump({**cell, "output_dir": str(seed_dir.parent), "run_name": seed_dir.name}, sort_keys=False))
    (seed_dir / "config.yaml").write_text(yaml.safe_dump(cell))
    body = results if isinstance(results, str) else json.dumps(RESULTS if results is None else results)
    (seed_dir / "results.json").write_text(body)
    return seed_dir


GOOD_CELL_CONFIG = {"backbone": "tiny-bert", "train": {"epochs": 1, "batch_size": 16}, "task": "gunpoint",
                    "method": {"name": "finetune"}, "seed": 0}


def with_cell(**kw):
    def setup(ctx):
        ctx.profile()
        finished_cell(ctx, **kw)
    return setup


def another_cells_run(ctx: Ctx) -> None:
    """A started MoNA run copied into the fine-tuning cell's folder (no seedN.yaml beside it)."""
    ctx.profile()
    seed_dir = finished_cell(ctx)
    (seed_dir.parent / "seed0.yaml").unlink()
    (seed_dir / "results.json").unlink()
    (seed_dir / "config.yaml").write_text(yaml.safe_dump({**GOOD_CELL_CONFIG, "method": {"name": "mona"}}))


def a_file_at(name: str, then=None):
    def setup(ctx):
        ctx.profile()
        (ctx.tmp / name).write_text("my notes")
        if then:
            then(ctx)
    return setup


def run_folder(ctx: Ctx, results: str | None = None) -> Path:
    run = ctx.tmp / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(GOOD_CELL_CONFIG))
    (run / "results.json").write_text(json.dumps(RESULTS) if results is None else results)
    return run


P = "{tmp}/p.yaml"
SWEEP = ["sweep", P]
LABEL = r"is not a plain folder name \(no '/', '\\', '\.\.', drive or surrounding spaces\); rename it in the profile\."

CASES = [
    # The profile file
    ("profile-missing", None, SWEEP, r"sweep profile '[^']*/p\.yaml' does not exist; see benchmarks/profiles/ for examples\."),
    ("profile-is-a-folder", lambda ctx: (ctx.tmp / "p.yaml").mkdir(), SWEEP, r"sweep profile '[^']*/p\.yaml' is not a file; .*"),
    ("profile-yaml-syntax", prof("name: t\nseeds: [0, 1\ntasks: {}\n"), SWEEP, r"sweep profile '[^']*/p\.yaml' is not valid YAML at line \d+; fix the syntax\."),
    ("profile-not-utf8", prof(b"name: \xff\xfe\x00\x01"), SWEEP, r"sweep profile '[^']*/p\.yaml' is not UTF-8 text \(byte \d+\); pass a profile YAML\."),
    ("profile-duplicate-key", prof("name: t\noutput: out\nseeds: [0]\nseeds: [1]\ntasks: {gp: {task: gunpoint}}\nmethods: {finetune: finetune}\n"), SWEEP,
     r"sweep profile '[^']*/p\.yaml' has key 'seeds' twice \(lines 3 and 4\); keep one of them\."),
    ("profile-alias-bomb", prof("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))),
     SWEEP, r"sweep profile '[^']*/p\.yaml' expands to more than \d+ values once its aliases are resolved .*"),
    ("profile-nested-too-deep", prof("name: " + "[" * 500 + "]" * 500 + "\n"), SWEEP, r"sweep profile '[^']*/p\.yaml' nests deeper than \d+ levels .*"),
    ("profile-empty", prof(""), SWEEP, r"sweep profile '[^']*/p\.yaml' is empty; it needs name, output, seeds, tasks and methods .*"),
    ("profile-only-comments", prof("# nothing yet\n"), SWEEP, r"sweep profile '[^']*/p\.yaml' is empty; .*"),
    ("profile-is-a-list", prof("- name\n- seeds\n"), SWEEP, r"sweep profile '[^']*/p\.yaml' must hold a mapping of key: value, got a list; .*"),
    ("profile-is-a-scalar", prof("42\n"), SWEEP, r"sweep profile '[^']*/p\.yaml' must hold a mapping of key: value, got a int; .*"),
    ("profile-missing-keys", prof(seeds=DROP, methods=DROP), SWEEP, r"sweep profile '[^']*/p\.yaml' needs seeds, methods; see benchmarks/profiles/cpu\.yaml\."),
    ("profile-unknown-key", prof(sedes=[0]), SWEEP, r"sweep profile '[^']*/p\.yaml' has unknown keys \['sedes'\]; valid keys: .*"),
    ("no-profile-only-overrides", None, ["sweep", "train.epochs=2"], r"sweep needs a profile file .*"),
    # seeds
    ("seeds-scalar", prof(seeds=3), SWEEP, r"sweep profile '[^']*': 'seeds' must be a non-empty list of integers \(e\.g\. seeds: \[0, 1, 2\]\), got 3\."),
    ("seeds-empty", prof(seeds=[]), SWEEP, r"sweep profile '[^']*': 'seeds' must be a non-empty list of integers .*, got \[\]\."),
    ("seeds-string", prof(seeds="0,1"), SWEEP, r"sweep profile '[^']*': 'seeds' must be a non-empty list .*, got '0,1'\."),
    ("seeds-not-integers", prof(seeds=[0, "one"]), SWEEP, r"sweep profile '[^']*': seed 'one' must be an integer from 0 to 4294967295\."),
    ("seeds-float", prof(seeds=[0.5]), SWEEP, r"sweep profile '[^']*': seed 0\.5 must be an integer from 0 to 4294967295\."),
    ("seeds-bool", prof(seeds=[True]), SWEEP, r"sweep profile '[^']*': seed True must be an integer .*"),
    ("seeds-negative", prof(seeds=[-1]), SWEEP, r"sweep profile '[^']*': seed -1 must be an integer from 0 to 4294967295\."),
    ("seeds-too-large", prof(seeds=[2**70]), SWEEP, r"sweep profile '[^']*': seed 1180591620717411303424 must be an integer .*"),
    ("seeds-repeated", prof(seeds=[0, 1, 0]), SWEEP, r"sweep profile '[^']*': 'seeds' lists a seed twice \(\[0, 1, 0\]\); each seed is one cell\."),
    # tasks and methods sections
    ("tasks-empty", prof(tasks={}), SWEEP, r"sweep profile '[^']*': 'tasks' must be a non-empty mapping of label: task .*, got \{\}\."),
    ("tasks-a-list", prof(tasks=["gunpoint"]), SWEEP, r"sweep profile '[^']*': 'tasks' must be a non-empty mapping .*, got \['gunpoint'\]\."),
    ("tasks-null", prof(tasks=None), SWEEP, r"sweep profile '[^']*': 'tasks' must be a non-empty mapping .*, got None\."),
    ("methods-empty", prof(methods={}), SWEEP, r"sweep profile '[^']*': 'methods' must be a non-empty mapping of label: method .*"),
    ("methods-a-string", prof(methods="finetune"), SWEEP, r"sweep profile '[^']*': 'methods' must be a non-empty mapping .*, got 'finetune'\."),
    ("task-entry-a-string", prof(tasks={"gunpoint": "gunpoint"}), SWEEP, r"sweep task 'gunpoint' must be a mapping of config keys \(e\.g\. \{task: NAME\}\), got 'gunpoint'\."),
    ("method-options-unknown-label", prof(tasks={"gp": {"task": "gunpoint", "method_options": {"fine-tune": {"lr": 0.1}}}}), SWEEP,
     r"sweep task 'gp': 'method_options' names 'fine-tune', which is not a method label of this profile's cells \(labels: .*\)\."),
    ("method-options-renames-the-method", prof(tasks={"gp": {"task": "gunpoint", "method_options": {"finetune": {"name": "scratch"}}}}), SWEEP,
     r"sweep task 'gp': 'method_options' of 'finetune' must be a mapping of that method's options without 'name' \(e\.g\. .*\), got \{'name': 'scratch'\}\."),
    ("method-options-a-list", prof(tasks={"gp": {"task": "gunpoint", "method_options": ["finetune"]}}), SWEEP,
     r"sweep task 'gp': 'method_options' must map method labels to option mappings \(e\.g\. .*\), got \['finetune'\]\."),
    ("method-entry-a-list", prof(methods={"ft": ["finetune"]}), SWEEP, r"sweep method 'ft' must be a method name or a mapping with 'name', got \['finetune'\]\."),
    ("method-entry-without-name", prof(methods={"ft": {"lam": 0.3}}), SWEEP, r"sweep method 'ft' must be a method name or a mapping with 'name', got \{'lam': 0\.3\}\."),
    ("base-a-list", prof(base=["tiny-bert"]), SWEEP, r"sweep profile '[^']*': 'base' must be a mapping of config keys, got \['tiny-bert'\]\."),
    ("output-not-a-path", prof(output=["out"]), SWEEP, r"sweep profile '[^']*': 'output' must be a folder path, got \['out'\]\."),
    ("keep-checkpoints-not-bool", prof(keep_checkpoints="no"), SWEEP, r"sweep profile '[^']*': 'keep_checkpoints' must be true or false, got 'no'\."),
    # labels that would name a folder outside --output
    ("task-label-escapes", prof(tasks={"../../../../escaped-task": {"task": "gunpoint"}}), SWEEP, r"sweep task label '\.\./\.\./\.\./\.\./escaped-task' " + LABEL),
    ("task-label-absolute", prof(tasks={"/tmp/abs-task": {"task": "gunpoint"}}), SWEEP, r"sweep task label '/tmp/abs-task' " + LABEL),
    ("task-label-dotdot", prof(tasks={"..": {"task": "gunpoint"}}), SWEEP, r"sweep task label '\.\.' " + LABEL),
    ("task-label-dot", prof(tasks={".": {"task": "gunpoint"}}), SWEEP, r"sweep task label '\.' " + LABEL),
    ("task-label-backslash", prof(tasks={"a\\..\\b": {"task": "gunpoint"}}), SWEEP, r"sweep task label .* " + LABEL),
    ("task-label-not-a-string", prof("name: t\noutput: out\nseeds: [0]\ntasks: {7: {task: gunpoint}}\nmethods: {finetune: finetune}\n"), SWEEP,
     r"sweep task label 7 must be a non-empty string \(it names a folder of the sweep\)\."),
    ("task-label-blank", prof(tasks={" ": {"task": "gunpoint"}}), SWEEP, r"sweep task label ' ' must be a non-empty string .*"),
    ("method-label-separator", prof(methods={"a/b": "finetune"}), SWEEP, r"sweep method label 'a/b' " + LABEL),
    ("method-label-escapes", prof(methods={"../../m": "finetune"}), SWEEP, r"sweep method label '\.\./\.\./m' " + LABEL),
    ("name-escapes", prof(name="../x"), SWEEP, r"sweep name '\.\./x' " + LABEL),
    ("name-not-a-string", prof(name=[1]), SWEEP, r"sweep name \[1\] must be a non-empty string .*"),
    # every cell's config, before the first one trains
    ("unknown-method", prof(methods={"ft": "finetnue"}), SWEEP, r"sweep cell ft/gunpoint/seed0: unknown method 'finetnue'\. Did you mean 'finetune'.*"),
    ("unknown-task", prof(tasks={"gp": {"task": "gunpoitn"}}), SWEEP, r"sweep cell finetune/gp/seed0: unknown dataset 'gunpoitn'\. Did you mean 'gunpoint'.*"),
    ("unknown-task-in-second-label", prof(tasks={"gp": {"task": "gunpoint"}, "dz": {"task": "darcy-61"}}), SWEEP,
     r"sweep cell finetune/dz/seed0: unknown dataset 'darcy-61'\..*"),
    ("misspelled-method-option", prof(methods={"mona": {"name": "mona", "meta_stpes": 2}}), SWEEP, r"sweep cell mona/gunpoint/seed0: .*'meta_stpes'.*"),
    ("misspelled-task-option", prof(tasks={"gp": {"task": {"name": "gunpoint", "max_trian": 3}}}), SWEEP, r"sweep cell finetune/gp/seed0: .*'max_trian'.*"),
    ("misspelled-train-option", prof(tasks={"gp": {"task": "gunpoint", "train": {"epcohs": 3}}}), SWEEP, r"sweep cell finetune/gp/seed0: .*'epcohs'.*"),
    ("unknown-config-key", prof(base={**GOOD["base"], "bakcbone": "tiny-bert"}), SWEEP, r"sweep cell finetune/gunpoint/seed0: unknown config key 'bakcbone'\..*"),
    ("unknown-backbone-override", prof(), SWEEP + ["backbone=tiny-brt"], r"sweep cell finetune/gunpoint/seed0: unknown backbone 'tiny-brt'\..*"),
    ("unknown-embedder", prof(tasks={"gp": {"task": "gunpoint", "embedder": "seq1d-cnov"}}), SWEEP, r"sweep cell finetune/gp/seed0: unknown embedder 'seq1d-cnov'\..*"),
    ("bad-embedder-option", prof(tasks={"gp": {"task": "gunpoint", "embedder": {"name": "seq1d-conv", "kernle": 3}}}), SWEEP,
     r"sweep cell finetune/gp/seed0: .*'kernle'.*"),
    ("bad-override-value", prof(), SWEEP + ["train.epochs=abc"], r"sweep cell finetune/gunpoint/seed0: .*'epochs'.*"),
    ("objective-wildcard-bad-role", prof(methods={"orca-{objective}": {"name": "orca", "objective": "*distnace"}}), SWEEP,
     r"sweep method 'orca-\{objective\}': no registered objective has role 'distnace' .*"),
    ("method-labels-collide", prof(methods={"orca-otdd": "orca", "orca-{objective}": {"name": "orca", "objective": "*distance"}}), SWEEP,
     r"sweep method label 'orca-otdd' is given twice \(again by 'orca-\{objective\}'\); rename one\."),
    # command-line options and folders
    ("only-unknown-label", prof(methods={"finetune": "finetune", "probe": "linear-probe"}), SWEEP + ["--only", "fintune"],
     r"sweep --only: unknown method label 'fintune'; the profile's are finetune, probe\."),
    ("only-empty", prof(), SWEEP + ["--only", ""], r"sweep --only: unknown method label ''; the profile's are finetune\."),
    ("tasks-unknown-label", prof(tasks={"gp": {"task": "gunpoint"}, "bm": {"task": "basic-motions"}}), SWEEP + ["--tasks", "gunpoint"],
     r"sweep --tasks: unknown task label 'gunpoint'; the profile's are gp, bm\."),
    ("tasks-separated-by-spaces", prof(tasks={"gp": {"task": "gunpoint"}, "bm": {"task": "basic-motions"}}), SWEEP + ["--tasks", "gp", "bm"],
     r"sweep takes one config file, got \['[^']*', 'bm'\]; pass the others' settings as key=value \(and separate the items of --only, --tasks and --seeds with commas, not spaces\)\."),
    ("seeds-option-not-in-profile", prof(), SWEEP + ["--seeds", "0,3"], r"sweep --seeds: the profile has no seed 3; its seeds are 0\."),
    ("seeds-option-not-integers", prof(), SWEEP + ["--seeds", "first"], r"sweep --seeds: 'first' is not a comma-separated list of integers; .*"),
    ("status-with-report-only", prof(), SWEEP + ["--status", "--report-only"], r"sweep: --status and --report-only do different things .*; give one\."),
    ("report-only-before-any-cell", prof(), SWEEP + ["--report-only"], r"sweep t: no finished cell in '[^']*/out' yet; run the sweep without --report-only first\."),
    ("output-is-a-file", a_file_at("notes.txt"), SWEEP + ["--output", "{tmp}/notes.txt"], r"sweep output '[^']*/notes\.txt': '[^']*/notes\.txt' is a file, not a folder; choose another --output\."),
    ("output-inside-a-file", a_file_at("notes.txt"), SWEEP + ["--output", "{tmp}/notes.txt/out"], r"sweep output '[^']*/notes\.txt/out': '[^']*/notes\.txt' is a file, not a folder; .*"),
    ("profile-output-is-a-file", a_file_at("out"), SWEEP, r"sweep output '[^']*/out': '[^']*/out' is a file, not a folder; choose another --output\."),
    # records of earlier cells
    ("profile-changed", with_cell(config={**GOOD_CELL_CONFIG, "train": {"epochs": 2, "batch_size": 16}}), SWEEP,
     r"cell finetune/gunpoint/seed0 was run with another config \([^)]*seed0\.yaml\): the profile or the sweep's key=value "
     r"overrides changed since\. Use a new output folder \(--output\), or delete '[^']*/seed0' and '[^']*/seed0\.yaml' to rerun this cell\."),
    ("results-not-json", with_cell(results='{"metric": "zero-one'), SWEEP,
     r"'[^']*/cells/finetune/gunpoint/seed0/results\.json' is damaged \(not the results\.json a run writes\); delete its cell folder .*"),
    ("results-a-list", with_cell(results="[1, 2]"), SWEEP, r"'[^']*/seed0/results\.json' is damaged .*"),
    ("results-without-metric", with_cell(results=json.dumps({"seed": 0, "test": {}})), SWEEP, r"'[^']*/seed0/results\.json' is damaged .*"),
    ("results-damaged-report-only", with_cell(results="\x00\x01"), SWEEP + ["--report-only"], r"'[^']*/seed0/results\.json' is damaged .*"),
    ("results-test-metric-missing", with_cell(results=json.dumps({**RESULTS, "test": {"loss": 0.3}})), SWEEP + ["--report-only"],
     r"'[^']*/seed0/results\.json' is damaged .*"),
    ("results-test-metric-not-a-number", with_cell(results=json.dumps({**RESULTS, "test": {"zero-one-error": "abc"}})),
     SWEEP + ["--report-only"], r"'[^']*/seed0/results\.json' is damaged .*"),
    ("results-of-another-seed", with_cell(results=json.dumps({**RESULTS, "seed": 2})), SWEEP + ["--report-only"],
     r"'[^']*/cells/finetune/gunpoint/seed0/results\.json' holds the results of finetune on gunpoint with seed 2, not those "
     r"of cell finetune/gunpoint/seed0; delete its cell folder .*"),
    ("results-of-another-method", with_cell(results=json.dumps({**RESULTS, "method": "mona"})), SWEEP,
     r"'[^']*/seed0/results\.json' holds the results of mona on gunpoint with seed 0, not those of cell finetune/gunpoint/seed0; .*"),
    ("results-metric-differs-within-a-task", lambda ctx: (
        ctx.profile(seeds=[0, 1]), finished_cell(ctx),
        finished_cell(ctx, seed=1, config={**GOOD_CELL_CONFIG, "seed": 1},
                      results={**RESULTS, "seed": 1, "metric": "loss", "test": {"loss": 0.6}})),
     SWEEP + ["--report-only"], r"'[^']*/seed1/results\.json' reports 'loss' where '[^']*/seed0/results\.json' \(the same task\) "
     r"reports 'zero-one-error': one of them is damaged; .*"),
    ("cells-folder-is-a-file", lambda ctx: (ctx.profile(), (ctx.tmp / "out").mkdir(), (ctx.tmp / "out/cells").write_text("x")),
     SWEEP + ["--status"], r"cell finetune/gunpoint/seed0: '[^']*/out/cells' is a file where the sweep keeps a folder; move it away to run the cell\."),
    ("cell-folder-is-a-file", lambda ctx: (ctx.profile(), (ctx.tmp / "out/cells/finetune/gunpoint").mkdir(parents=True),
                                           (ctx.tmp / "out/cells/finetune/gunpoint/seed0").write_text("x")),
     SWEEP + ["--status"], r"cell finetune/gunpoint/seed0: '[^']*/seed0' is a file where the sweep keeps a folder; move it away to run the cell\."),
    ("cell-folder-holds-another-cells-run", another_cells_run, SWEEP,
     r"cell finetune/gunpoint/seed0's folder '[^']*/cells/finetune/gunpoint/seed0' holds a run of mona on gunpoint with seed 0, "
     r"not this cell's; move that folder away \(or delete it\) to run the cell\."),
    ("cell-record-damaged", lambda ctx: (ctx.profile(), (finished_cell(ctx).parent / "seed0.yaml").write_text("a: [1\n")), SWEEP,
     r"'[^']*/seed0\.yaml' is damaged \(not the file a run writes\); .*"),
    # keys the sweep sets for every cell would be dropped without a word
    ("override-sets-seed", prof(), SWEEP + ["seed=5"],
     r"sweep override 'seed=5' sets 'seed', which the sweep sets for every cell; list seeds under 'seeds:' \(or pass --seeds\)\."),
    ("override-sets-method-option", prof(), SWEEP + ["method.lr=1"], r"sweep override 'method\.lr=1' sets 'method', which the sweep sets for every cell; .*--only\."),
    ("base-sets-output-dir", prof(base={**GOOD["base"], "output_dir": "x"}), SWEEP,
     r"sweep profile '[^']*': 'base' sets 'output_dir', which the sweep sets for every cell; set the profile's 'output:' \(or pass --output\)\."),
    ("task-sets-run-name", prof(tasks={"gunpoint": {"task": "gunpoint", "run_name": "x"}}), SWEEP,
     r"sweep task 'gunpoint' sets 'run_name', which the sweep sets for every cell; each cell's folder is named METHOD/TASK/seedN\."),
    ("submitit-item-not-key-value", prof(), SWEEP + ["--submitit", "foo"], r"override 'foo' is not key=value \(e\.g\. time_min=60\)\."),
    ("submitit-without-its-launcher", prof(), SWEEP + ["--submitit", "partition=debug"],
     r"sweep --submitit partition=debug: submitit settings apply to --launcher submitit only; add --launcher submitit \(or leave --submitit out\)\."),
    # what a cell's run would refuse only once started: checked for every cell before the first is launched
    ("device-not-a-device", prof(), SWEEP + ["device=gpu"],
     r"sweep cell finetune/gunpoint/seed0: device 'gpu' is not a torch device; use auto, cpu, cuda or cuda:N\."),
    ("device-not-here", prof(), SWEEP + ["device=cuda:7"], r"sweep cell finetune/gunpoint/seed0: device 'cuda:7' asked for, but .*"),
    ("fp16-on-the-cpu", prof(), SWEEP + ["device=cpu", "train.precision=fp16"],
     r"sweep cell finetune/gunpoint/seed0: train\.precision=fp16 needs a CUDA device, but the run is on cpu; .*"),
    ("logger-unknown", prof(), SWEEP + ["loggers=[nope]"], r"sweep cell finetune/gunpoint/seed0: unknown logger 'nope'.*"),
    ("logger-option-unknown", prof(), SWEEP + ["loggers=[{{name: tensorboard, flush_secss: 3}}]"], r"sweep cell finetune/gunpoint/seed0: .*flush_secss.*"),
    ("body-folder-missing", prof(), SWEEP + ["backbone=hf:/nonexistent/model"],
     r"sweep cell finetune/gunpoint/seed0: backbone 'hf:/nonexistent/model' cannot be built: backbone 'hf:/nonexistent/model': "
     r"model folder '/nonexistent/model' does not exist; .*"),
    ("body-folder-missing-references-only", prof(methods={"linear": "linear"}), SWEEP + ["backbone=hf:/nonexistent/model"],
     r"sweep cell linear/gunpoint/seed0: backbone 'hf:/nonexistent/model' cannot be built: .*does not exist; .*"),
    ("fp16-on-a-named-cpu-under-submitit", prof(), SWEEP + ["--launcher", "submitit", "device=cpu", "train.precision=fp16"],
     r"sweep cell finetune/gunpoint/seed0: train\.precision=fp16 needs a CUDA device, but the run is on cpu; .*"),
    ("output-holds-a-users-files", lambda ctx: (ctx.profile(), (ctx.tmp / "out").mkdir(), (ctx.tmp / "out/table.md").write_text("my notes")), SWEEP,
     r"sweep output '[^']*/out' holds table\.md but no sweep's cells/ folder; the sweep's report would replace it\. "
     r"Choose a new or empty folder with --output\."),
    # plot
    ("plot-out-is-a-file", lambda ctx: (run_folder(ctx), (ctx.tmp / "plots.png").write_text("x")), ["plot", "{tmp}/runs/r", "--out", "{tmp}/plots.png"],
     r"plot folder '[^']*/plots\.png': '[^']*/plots\.png' is a file, not a folder; choose another --out\."),
    ("plot-out-inside-a-file", lambda ctx: (run_folder(ctx), (ctx.tmp / "notes").write_text("x")), ["plot", "{tmp}/runs/r", "--out", "{tmp}/notes/plots"],
     r"plot folder '[^']*/notes/plots': '[^']*/notes' is a file, not a folder; choose another --out\."),
    ("plot-results-damaged", lambda ctx: run_folder(ctx, results='{"metric": '), ["plot", "{tmp}/runs/r", "--out", "{tmp}/plots"],
     r"'[^']*/runs/r/results\.json' is damaged \(not the file a run writes\); .*"),
    ("plot-events-damaged", lambda ctx: (run_folder(ctx) / "metrics.jsonl").write_text("{not json\n"), ["plot", "{tmp}/runs/r", "--out", "{tmp}/plots"],
     r"'[^']*/runs/r/metrics\.jsonl' line 1 is damaged \(not an event a run writes\); delete that line \(or restore the file from a backup\) and retry\."),
    ("plot-results-metric-a-list", lambda ctx: run_folder(ctx, results=json.dumps({**RESULTS, "metric": ["a"]})),
     ["plot", "{tmp}/runs/r", "--out", "{tmp}/plots"], r"'[^']*/runs/r/results\.json' is damaged \(not the file a run writes\); .*"),
    ("plot-results-val-a-list", lambda ctx: run_folder(ctx, results=json.dumps({**RESULTS, "val": [1]})),
     ["plot", "{tmp}/runs/r", "--out", "{tmp}/plots"], r"'[^']*/runs/r/results\.json' is damaged \(not the file a run writes\); .*"),
    ("report-results-val-a-list", with_cell(results=json.dumps({**RESULTS, "val": [1]})), SWEEP + ["--report-only"],
     r"'[^']*/seed0/results\.json' is damaged .*"),
    ("plot-not-a-run", None, ["plot", "{tmp}", "--out", "{tmp}/plots"], r"'[^']*' is not a run directory \(no config\.yaml\); pass the folder a run created\."),
]


def disk_state(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None): a refused command leaves not even an empty folder."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def in_process_kit(kit, monkeypatch):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    return kit


def test_the_table_has_enough_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,setup,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_sweep_input(case_id, setup, argv, expected, in_process_kit, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a relative output folder lands in tmp too
    if setup is not None:
        setup(Ctx(tmp_path))
    capsys.readouterr()
    before = disk_state(tmp_path)

    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mona-kit: error: ")
    message = err[len("mona-kit: error: "):-1]
    assert re.fullmatch(expected, message), message
    assert disk_state(tmp_path) == before  # nothing written, changed or deleted
    assert not (tmp_path.parent / "escaped-task").exists()


# --- folders -------------------------------------------------------------------------------------


def test_cell_paths_are_checked_inside_the_output(tmp_path):
    """Even a label that slipped past the profile check cannot name a folder outside --output."""
    from mona_kit.errors import ConfigError
    from mona_kit.sweep import cell_dir
    from mona_kit.sweep_profile import Cell

    (tmp_path / "out" / "cells" / "m").mkdir(parents=True)
    (tmp_path / "out" / "cells" / "m" / "t").symlink_to(tmp_path)  # a symlink out of the sweep
    inside = cell_dir(tmp_path / "out", Cell("m", "u", 0, {}))
    assert inside == tmp_path / "out" / "cells" / "m" / "u" / "seed0"
    for method, task in (("m", "t"), ("..", "x"), ("m", "../../../../escaped-task")):
        with pytest.raises(ConfigError, match="would be written outside the output folder's cells"):
            cell_dir(tmp_path / "out", Cell(method, task, 0, {}))


@pytest.mark.parametrize("how", ["moved", "relative-output", "absolute-output"])
def test_a_moved_or_relative_sweep_folder_is_the_same_sweep(how, in_process_kit, tmp_path, monkeypatch, capsys):
    """The profile-change check compares the cells' configs, not where their folder lives."""
    ctx = Ctx(tmp_path)
    if how == "moved":  # recorded under old/, then the folder moved to new/
        finished_cell(ctx, out="old")
        (tmp_path / "old").rename(tmp_path / "new")
        ctx.profile(output=str(tmp_path / "new"))
        argv = ["sweep", str(tmp_path / "p.yaml")]
    else:  # recorded with a relative output, re-run with an absolute one (or the other way round)
        monkeypatch.chdir(tmp_path)
        seed_dir = finished_cell(ctx, out="new")
        record = seed_dir.parent / "seed0.yaml"
        data = yaml.safe_load(record.read_text())
        data["output_dir"] = "new/cells/finetune/gunpoint" if how == "absolute-output" else str(seed_dir.parent)
        record.write_text(yaml.safe_dump(data, sort_keys=False))
        ctx.profile(output="new" if how == "relative-output" else str(tmp_path / "new"))
        argv = ["sweep", str(tmp_path / "p.yaml")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "finetune/gunpoint/seed0: done" in captured.out + captured.err
    table = (tmp_path / "new" / "table.md").read_text()
    assert "| finetune | **0.5 ± 0** |" in table


def test_a_changed_profile_is_still_refused_after_a_move(in_process_kit, tmp_path, capsys):
    ctx = Ctx(tmp_path)
    finished_cell(ctx, out="old")
    (tmp_path / "old").rename(tmp_path / "new")
    ctx.profile(output=str(tmp_path / "new"), base={"backbone": "tiny-bert", "train": {"epochs": 3, "batch_size": 16}})
    assert cli.main(["sweep", str(tmp_path / "p.yaml")]) == 2
    assert "the profile or the sweep's key=value overrides changed" in capsys.readouterr().err


def test_a_cell_locked_by_a_live_run_is_left_alone(kit, tmp_path):
    """A re-run sweep meeting a cell another live process writes reports it, never overwrites it."""
    import fcntl

    from mona_kit.runs import LOCK
    from mona_kit.sweep import run_cell
    from mona_kit.sweep_profile import cells

    profile = yaml.safe_load(yaml.safe_dump(GOOD).replace("{tmp}", str(tmp_path)))
    (cell,) = list(cells(profile, kit))
    run_dir = tmp_path / "out" / "cells" / "finetune" / "gunpoint" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("partial: true\n")
    lock = run_dir / LOCK
    lock.write_text(json.dumps({"pid": 4242, "host": "elsewhere", "since": "now"}))
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the live run holds it
    try:
        before = disk_state(tmp_path)
        result = run_cell(tmp_path / "out", cell, python="/nonexistent-python-never-started")
        assert result["status"] == "running elsewhere"
        assert "in use by process 4242 on host elsewhere" in result["error"]
        assert disk_state(tmp_path) == before
    finally:
        os.close(fd)


# --- real sweeps ---------------------------------------------------------------------------------


def test_a_failed_cell_makes_the_sweep_exit_1_and_the_report_is_still_written(tmp_path):
    """One cell finished earlier, one fails in its own process (an embedder that does not fit the
    task, which only building the model finds out): exit 1, the failure on stderr, the table of
    the finished cell written."""
    ctx = Ctx(tmp_path)
    finished_cell(ctx, task="gunpoint")
    ctx.profile(tasks={"gunpoint": {"task": "gunpoint"}, "bad": {"task": "gunpoint", "embedder": "grid2d-patch"}})
    proc = subprocess.run([sys.executable, "-m", "mona_kit", "sweep", str(tmp_path / "p.yaml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "finetune/gunpoint/seed0: done" in proc.stdout
    assert re.search(r"FAILED finetune/bad/seed0: mona-kit: error: embedder 'grid2d-patch' takes inputs of rank 3", proc.stderr)
    assert "sweep t: 1 of 2 cells failed (finetune/bad/seed0)" in proc.stderr
    assert "Traceback" not in proc.stderr
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| finetune | **0.5 ± 0** |" in table and "bad" not in table
    assert (tmp_path / "out" / "errors.png").stat().st_size > 1000


def _children(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (a launcher running cells at once starts them from threads)."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(x) for x in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            pass
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_kill_9_of_a_sweep_kills_its_cell(tmp_path):
    """kill -9 of the sweep process takes its running cell with it: no orphan keeps writing."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mona_kit", "sweep", str(ROOT / "benchmarks" / "profiles" / "tiny.yaml"),
           "--output", str(out), "--only", "finetune", "train.epochs=500"]
    sweep = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    child = None
    try:
        deadline = time.time() + 60
        run_dir = out / "cells" / "finetune" / "gunpoint" / "seed0"
        while time.time() < deadline and not (child and (run_dir / "metrics.jsonl").is_file()):
            assert sweep.poll() is None, "the sweep ended before its first cell trained"
            child = next(iter(_children(sweep.pid)), child)
            time.sleep(0.2)
        assert child is not None and (run_dir / "metrics.jsonl").is_file(), "the first cell never started training"
        assert _alive(child)
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=10)
        deadline = time.time() + 10
        while _alive(child) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the cell kept running after its sweep was killed"
        size = (run_dir / "metrics.jsonl").stat().st_size
        time.sleep(1.0)
        assert (run_dir / "metrics.jsonl").stat().st_size == size  # nobody writes the cell any more
    finally:
        for pid in (sweep.pid, child):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- the command's verdict and the report's numbers ------------------------------------------------


@pytest.mark.parametrize("status,code", [("failed", 1), ("running elsewhere", 0)])
def test_the_exit_status_follows_the_cells(status, code, in_process_kit, tmp_path, monkeypatch, capsys):
    """Every cell failed: exit 1, one FAILED line per cell and a summary, no report from nothing.
    Every cell busy in another process: exit 0 (nothing failed), the cells named on stderr."""
    import mona_kit.sweep

    def fake_run_cell(output, cell, **kw):
        return {"status": status, "error": "mona-kit: error: boom", "log": str(tmp_path / "x.log")}

    monkeypatch.setattr(mona_kit.sweep, "run_cell", fake_run_cell)
    Ctx(tmp_path).profile(seeds=[0, 1])
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--jobs", "1"]) == code  # one at a time: the lists keep cell order
    err = capsys.readouterr().err
    if status == "failed":
        assert err.count("FAILED finetune/gunpoint/seed") == 2
        assert "sweep t: 2 of 2 cells failed (finetune/gunpoint/seed0, finetune/gunpoint/seed1)" in err
    else:
        assert "sweep t: 2 cell(s) running elsewhere, not run here: finetune/gunpoint/seed0, finetune/gunpoint/seed1" in err
    assert not (tmp_path / "out" / "table.md").exists()


def test_the_summaries_list_parallel_cells_in_profile_order(in_process_kit, tmp_path, monkeypatch, capsys):
    """Two cells at once, the second finishing first: the FAILED lines and the summary still list
    them in the profile's order, so a log reads the same whichever cell was faster."""
    import threading

    import mona_kit.sweep

    second_done = threading.Event()

    def fake_run_cell(output, cell, **kw):
        if cell.seed == 0:
            assert second_done.wait(10), "the two cells did not run at once"
            time.sleep(0.5)  # so that the sweep sees seed 1 finish first
        else:
            second_done.set()
        return {"status": "failed", "error": f"mona-kit: error: boom {cell.seed}", "log": str(tmp_path / "x.log")}

    monkeypatch.setattr(mona_kit.sweep, "run_cell", fake_run_cell)
    Ctx(tmp_path).profile(seeds=[0, 1])
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert err.index("FAILED finetune/gunpoint/seed0") < err.index("FAILED finetune/gunpoint/seed1")
    assert "2 of 2 cells failed (finetune/gunpoint/seed0, finetune/gunpoint/seed1)" in err


def test_a_profile_edited_during_the_sweep_starts_no_more_cells(in_process_kit, tmp_path, monkeypatch, capsys):
    """A running sweep holds its profile in memory: once the file changes on disk, the cells it has not
    started are not run from the stale copy (they would carry the old config into the new profile's
    folders); they are reported failed and a re-run picks the profile up as it is."""
    import mona_kit.sweep

    started = []

    def fake_run_cell(output, cell, **kw):
        started.append(cell.key)
        (tmp_path / "p.yaml").write_text((tmp_path / "p.yaml").read_text() + "# revised\n")  # edited meanwhile
        return {"status": "failed", "error": "mona-kit: error: stop", "log": str(tmp_path / "x.log")}

    monkeypatch.setattr(mona_kit.sweep, "run_cell", fake_run_cell)
    Ctx(tmp_path).profile(seeds=[0, 1])
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--jobs", "1"]) == 1
    assert started == ["finetune/gunpoint/seed0"]
    err = capsys.readouterr().err
    assert re.search(r"FAILED finetune/gunpoint/seed1: not started: the profile '[^']*p\.yaml' changed since this sweep read it; "
                     r"re-run the sweep", err), err


def test_an_output_under_home_is_one_folder(in_process_kit, tmp_path, monkeypatch, capsys):
    """'output: ~/x' is expanded by the sweep as by the cells' own runs (it once wrote the cells' records
    to a literal './~/x' and the runs to $HOME/x, and called every cell failed)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path)
    finished_cell(ctx, out="home/x")
    ctx.profile(output="~/x")
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 0, capsys.readouterr().err
    assert (tmp_path / "home" / "x" / "table.md").is_file()
    assert not (tmp_path / "~").exists()


def test_a_diverged_seed_recorded_as_the_string_nan_is_counted(in_process_kit, tmp_path, capsys):
    """Runs record a non-finite metric as "nan" (JSON has no NaN): the report counts it apart."""
    ctx = Ctx(tmp_path)
    ctx.profile(seeds=[0, 1, 2])
    for seed, value in enumerate([0.5, "nan", 0.7]):
        finished_cell(ctx, seed=seed, config={**GOOD_CELL_CONFIG, "seed": seed},
                      results={**RESULTS, "seed": seed, "test": {"zero-one-error": value}})
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 0, capsys.readouterr().err
    assert "0.6 ± 0.14 (n=2 of 3)" in (tmp_path / "out" / "table.md").read_text()
    assert "nan" in (tmp_path / "out" / "results.csv").read_text()


def test_a_dataset_whose_spec_names_itself_otherwise_is_still_its_cell(in_process_kit, tmp_path, capsys):
    """results.json's task is the dataset's own spec name; the cell holds the registered name, which runs
    record under components.task: that is what must match."""
    ctx = Ctx(tmp_path)
    ctx.profile()
    finished_cell(ctx, results={**RESULTS, "task": "GunPoint (UCR)", "components": {"task": "gunpoint", "method": "finetune"}})
    capsys.readouterr()
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 0, capsys.readouterr().err


def test_folders_that_are_no_cell_of_the_profile_are_named_not_averaged_in(in_process_kit, tmp_path, capsys):
    """A copied seed folder or a method the profile does not have would be a fourth seed or a row of
    its own: the report reads only the profile's cells and names the others."""
    import shutil

    ctx = Ctx(tmp_path)
    ctx.profile()
    seed_dir = finished_cell(ctx)
    shutil.copytree(seed_dir, seed_dir.parent / "seed0.bak")
    finished_cell(ctx, method="zzz", results={**RESULTS, "method": "zzz", "test": {"zero-one-error": 0.9}})
    (tmp_path / "out" / "cells" / "old" / "gunpoint" / "seed0").mkdir(parents=True)
    (tmp_path / "out" / "cells" / "old" / "gunpoint" / "seed0" / "results.json").write_text("{")  # damaged, and not read
    capsys.readouterr()
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 0
    err = capsys.readouterr().err
    assert "left out of the report, not cells of this profile: finetune/gunpoint/seed0.bak, old/gunpoint/seed0, zzz/gunpoint/seed0" in err
    table = (tmp_path / "out" / "table.md").read_text()
    assert "### t: 1 cells" in table and "| finetune | **0.5 ± 0** |" in table and "zzz" not in table


def test_the_sweep_report_leaves_random_weight_controls_out_of_the_specialist_comparison(in_process_kit, tmp_path, capsys):
    """`scratch` is registered with meta uses_pretrained_body=False: the sweep must hand it to the
    report as a control, so that the best *transfer* row against the specialist is finetune's even
    where scratch scores better."""
    ctx = Ctx(tmp_path)
    ctx.profile(methods={"specialist": "specialist", "finetune": "finetune", "scratch": "scratch"})
    for method, error in [("specialist", 0.1), ("finetune", 0.3), ("scratch", 0.2)]:
        finished_cell(ctx, method=method, config={**GOOD_CELL_CONFIG, "method": {"name": method}},
                      results={**RESULTS, "method": method, "test": {"zero-one-error": error}})
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 0, capsys.readouterr().err
    table = (tmp_path / "out" / "table.md").read_text()
    section = table.split("## Against the specialist")[1].split("\n## ")[0]
    assert "| gunpoint | finetune | 0.3 " in section and "scratch" not in section.split("|---|")[-1]


def test_plot_expands_the_home_folder_in_runs_and_out(in_process_kit, tmp_path, monkeypatch, capsys):
    run_folder(Ctx(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plot", "~/runs/r", "--out", "~/plots"]) == 0, capsys.readouterr().err
    assert list((tmp_path / "plots").glob("*.png")) and not (tmp_path / "~").exists()


def test_a_trained_run_without_validation_events_draws_no_reference_line(in_process_kit, tmp_path, monkeypatch, capsys):
    """Only a reference method's single validation value is drawn as the line the curves must get under;
    a trained run whose metrics.jsonl is empty is not a reference."""
    import matplotlib.axes

    lines = []
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline", lambda self, y, **kw: lines.append(kw.get("label")))
    ctx = Ctx(tmp_path)
    run = run_folder(ctx)
    (run / "metrics.jsonl").write_text("")
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    assert lines == []
    (run / "results.json").write_text(json.dumps({**RESULTS, "method": "linear", "reference": {"model": "linear"}}))
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    assert len(lines) == 1 and lines[0].endswith(", fitted")


def test_a_report_that_cannot_be_written_says_to_run_the_command_again(in_process_kit, tmp_path, monkeypatch, capsys):
    """A report is made again from the cells, not resumed: its write failure says so, not 'run --resume'."""
    import mona_kit.atomic_io

    ctx = Ctx(tmp_path)
    ctx.profile()
    finished_cell(ctx)
    real = mona_kit.atomic_io.os.replace

    def full_disk(src, dst):
        if str(dst).endswith("table.md"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(mona_kit.atomic_io.os, "replace", full_disk)
    capsys.readouterr()
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--report-only"]) == 2
    err = capsys.readouterr().err
    assert "table.md': No space left on device; free disk space or make the folder writable and run the command again" in err
    assert "--resume" not in err


def test_plot_draws_a_run_into_a_new_folder(in_process_kit, tmp_path, capsys):
    run = run_folder(Ctx(tmp_path))
    events = [{"stage": "finetune", "step": s, "loss": 1.0 / s} for s in range(1, 5)]
    events += [{"stage": "finetune", "step": 4, "split": "val", "zero-one-error": 0.4}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "a" / "b")]) == 0
    png = tmp_path / "a" / "b" / f"{run.name}-learning-curves.png"
    assert png.stat().st_size > 1000 and str(png) in capsys.readouterr().out
    assert not list((tmp_path / "a" / "b").glob(".*.tmp"))  # written through a temporary file, renamed


def test_two_runs_plotted_into_one_folder_keep_their_own_plots(in_process_kit, tmp_path, capsys):
    """Plots are named per run: a second run's plots never overwrite the first one's."""
    Ctx(tmp_path)
    events = [{"stage": "align", "event": "stage-start", "trains_task": False},
              {"stage": "align", "step": 1, "split": "val", "zero-one-error": 0.9},
              {"stage": "tune", "event": "stage-start", "trains_task": True}]
    events += [{"stage": "tune", "step": s, "loss": 1.0 / s} for s in range(1, 5)]
    runs = []
    (tmp_path / "runs").mkdir()
    for name in ("finetune-a-s0", "finetune-a-s1"):  # two runs of one output folder
        run = run_folder(Ctx(tmp_path / name)).rename(tmp_path / "runs" / name)
        (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        assert cli.main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 0
        runs.append(run)
    names = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert names == sorted(f"{r.name}-learning-curves.png" for r in runs) and len(set(names)) == 2, names
    from mona_kit.plotting import final_stage

    assert final_stage(events) == "tune"  # from the stages' metadata, not from a list of stage names
    assert final_stage([e for e in events if e.get("event") != "stage-start"]) == "align"  # older runs: last validated


def test_a_cell_whose_run_never_began_takes_the_current_config(in_process_kit, tmp_path, monkeypatch, capsys):
    """A cell that failed its own checks left only its seedN.yaml (no run folder): a corrected sweep is
    not refused as 'changed' — there is nothing of the old config to protect."""
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path)
    ctx.profile()
    record = tmp_path / "out/cells/finetune/gunpoint/seed0.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(yaml.safe_dump({**GOOD_CELL_CONFIG, "device": "gpu"}, sort_keys=False))
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--status"]) == 0, capsys.readouterr().err
    assert "0 of 1 cells finished" in capsys.readouterr().out


def test_a_finished_sweep_rebuilds_its_report_where_its_device_is_missing(in_process_kit, tmp_path, monkeypatch, capsys):
    """Finished cells are not checked for their device or body: a GPU sweep's report can be rebuilt on a laptop."""
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path)
    ctx.profile(base={**GOOD["base"], "device": "cuda:7"})
    finished_cell(ctx, config={**GOOD_CELL_CONFIG, "device": "cuda:7"})
    assert cli.main(["sweep", str(tmp_path / "p.yaml")]) == 0, capsys.readouterr().err
    assert "| finetune | **0.5 ± 0** |" in (tmp_path / "out" / "table.md").read_text()


def test_a_cell_that_failed_its_own_checks_runs_with_the_corrected_config(in_process_kit, tmp_path, monkeypatch, capsys):
    """The cell left only its seedN.yaml and log by a run that never began is launched with the new config,
    its record rewritten (run_cell replaced here: the launch, not the training, is under test)."""
    import mona_kit.sweep as sweep

    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path)
    ctx.profile()
    record = tmp_path / "out/cells/finetune/gunpoint/seed0.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(yaml.safe_dump({**GOOD_CELL_CONFIG, "train": {"epochs": 9, "batch_size": 16}}, sort_keys=False))
    launched = []

    def fake_wait(argv, fh, env):
        launched.append(yaml.safe_load(record.read_text()))
        return 1  # the child fails: the sweep reports it, the record stays the new one
    monkeypatch.setattr(sweep, "_wait_cell", fake_wait)
    assert cli.main(["sweep", str(tmp_path / "p.yaml"), "--no-progress"]) == 1
    assert launched and launched[0]["train"] == {"epochs": 1, "batch_size": 16}
