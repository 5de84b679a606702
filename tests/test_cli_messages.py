"""Usage errors of every verb, and refusals of the CLI and the Python API, are one line that says what is
wrong and how to fix it (exit status 2 on the command line, a MonaError from Python)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import TensorDataset

import mona_kit.cli as cli
from mona_kit.errors import ConfigError, DataError, MonaError
from mona_kit.runs import MARKER

MONA_KIT = str(Path(sys.executable).with_name("mona-kit"))


@pytest.fixture
def toy_cli(monkeypatch, toy_kit):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    return toy_kit


def usage_error(capsys, argv: list[str]) -> str:
    """argparse's refusal: SystemExit 2 and one line on stderr, no usage block."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    out = capsys.readouterr()
    assert out.err.endswith("\n") and out.err.count("\n") == 1 and "usage:" not in out.err, out.err
    return out.err.strip()


def one_line_error(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("argv,words", [
    (["list", "widgets"], ["mona-kit list: error: argument kind: invalid choice: 'widgets'", "see 'mona-kit list --help'."]),
    (["sweep"], ["mona-kit sweep: error: the following arguments are required: PROFILE|key=value", "mona-kit sweep --help"]),
    (["run", "--checkpoints", "some"], ["mona-kit run: error: argument --checkpoints: invalid choice: 'some'", "mona-kit run --help"]),
    (["gap", "--samples", "abc"], ["mona-kit gap: error: argument --samples: invalid int value: 'abc'", "mona-kit gap --help"]),
    (["widgets"], ["mona-kit: error: argument VERB: invalid choice: 'widgets'", "see 'mona-kit --help'."]),
])
def test_a_usage_error_is_one_line(toy_cli, capsys, argv, words):
    err = usage_error(capsys, argv)
    for word in words:
        assert word in err


def test_data_info_without_a_name_says_only_the_name_is_missing(toy_cli, capsys):
    err = usage_error(capsys, ["data", "info"])
    assert err == "mona-kit data info: error: the following arguments are required: name; see 'mona-kit data info --help'."


def test_an_unknown_flag_names_its_verb_and_the_flag_it_resembles(toy_cli, capsys):
    err = usage_error(capsys, ["run", "--overwrit"])
    assert err == ("mona-kit run: error: unrecognized arguments: --overwrit (did you mean --overwrite?); "
                   "see 'mona-kit run --help'.")
    err = usage_error(capsys, ["data", "info", "toy-seq", "--bogus"])
    assert err.startswith("mona-kit data info: error: unrecognized arguments: --bogus;")


def test_usage_error_in_a_subprocess_is_one_line_with_status_2():
    proc = subprocess.run([MONA_KIT, "list", "widgets"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "usage:" not in proc.stderr and "Traceback" not in proc.stderr
    assert "invalid choice: 'widgets'" in proc.stderr


def test_help_still_shows_usage(toy_cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["list", "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: mona-kit list")


def test_list_takes_its_glob_after_its_flags(toy_cli, capsys):
    assert cli.main(["list", "backbones", "--json", "toy-b*"]) == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["toy-body"]
    err = usage_error(capsys, ["list", "backbones", "a*", "b*"])
    assert "unrecognized arguments: b*" in err


def test_nothing_listed_says_so(toy_cli, capsys):
    assert cli.main(["list", "commands"]) == 0
    assert capsys.readouterr().out.strip() == "(no plugin commands installed)"
    assert cli.main(["list", "backbones", "zz*"]) == 0
    assert capsys.readouterr().out.strip() == "(no backbones match 'zz*')"
    assert cli.main(["data", "list", "zz*"]) == 0
    assert capsys.readouterr().out.strip() == "(no datasets match 'zz*')"


def _config(tmp_path: Path) -> Path:
    cfg = {
        "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
        "method": "finetune", "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"),
        "run_name": "mine",
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_users_folder_is_not_offered_for_overwrite_or_resume(toy_cli, capsys, tmp_path):
    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    err = one_line_error(capsys, ["run", str(_config(tmp_path)), "--no-progress"])
    assert err == (f"mona-kit: error: run directory {str(folder)!r} already exists and is not a mona-kit run folder "
                   f"(no {MARKER} file), so it is neither replaced nor resumed; choose another run_name or output_dir.")
    assert "--overwrite" not in err and "--resume" not in err
    assert (folder / "notes.txt").read_text() == "mine" and sorted(os.listdir(folder)) == ["notes.txt"]


def test_resume_of_a_missing_folder_says_it_does_not_exist(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, ["run", "--resume", str(tmp_path / "nope")])
    assert f"{str(tmp_path / 'nope')!r} does not exist; pass the folder a run created" in err
    assert "config.yaml" not in err


def test_gap_with_a_missing_config_names_gap(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, ["gap", str(tmp_path / "nonexist.yaml"), "--objectives", "toy-mse"])
    assert "does not exist" in err and "run 'mona-kit gap' with no file" in err and "'mona-kit run'" not in err


# The Python API: its refusals name its own arguments ------------------------------------------------

TOY = {"backbone": "toy-body", "source": "toy-text", "train": {"epochs": 1, "batch_size": 16}}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_fit_overwrite_of_a_users_folder_names_fit_arguments(toy_kit, tmp_path):
    from mona_kit.api import fit

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(MonaError) as exc:
        fit("finetune", {"name": "toy-seq", "n_train": 32}, kit=toy_kit, run_dir=folder, overwrite=True, **TOY)
    text = _one_line(exc)
    assert text.startswith("overwrite=True refused:") and "choose another run_dir=" in text and "--overwrite" not in text
    with pytest.raises(MonaError) as exc:
        fit("finetune", {"name": "toy-seq", "n_train": 32}, kit=toy_kit, run_dir=folder, **TOY)
    text = _one_line(exc)
    assert "not a mona-kit run folder" in text and "choose another run_dir=" in text and "run_name" not in text
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_fit_into_an_existing_run_or_a_file_names_fit_arguments(toy_kit, tmp_path):
    from mona_kit.api import fit

    run = tmp_path / "old"
    run.mkdir()
    (run / MARKER).write_text('{"made_by": "mona-kit", "run_name": "old"}\n')
    (run / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(MonaError) as exc:
        fit("finetune", {"name": "toy-seq", "n_train": 32}, kit=toy_kit, run_dir=run, **TOY)
    text = _one_line(exc)
    assert "already exists; pass overwrite=True to replace it, choose another run_dir=" in text and "--overwrite" not in text
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(MonaError) as exc:
        fit("finetune", {"name": "toy-seq", "n_train": 32}, kit=toy_kit, run_dir=a_file, **TOY)
    assert _one_line(exc).endswith("is an existing file, not a folder; choose another run_dir=.")


def test_fit_on_samples_without_labels_says_the_label_is_missing(toy_kit):
    from mona_kit.api import fit

    x = TensorDataset(torch.randn(4, 8, 3))
    with pytest.raises(DataError) as exc:
        fit("finetune", (x, x, x), kit=toy_kit, **TOY)
    text = _one_line(exc)
    assert "train sample 0" in text and "the label is missing" in text and "TensorDataset(x, y)" in text


@pytest.mark.parametrize("extra", [[3], [object()]])
def test_load_kit_refuses_an_object_that_implements_no_hook(extra):
    from mona_kit.api import load_kit

    with pytest.raises(ConfigError) as exc:
        load_kit(entry_points=False, extra=extra)
    assert "implements no mona-kit hook" in _one_line(exc)


def test_load_kit_takes_a_plugin_module():
    import toy_plugin

    from mona_kit.api import load_kit

    assert "toy-body" in load_kit(entry_points=False, extra=[toy_plugin]).backbones
