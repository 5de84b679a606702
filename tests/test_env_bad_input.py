"""Bad environment variables and small bad values: each is one line saying what is wrong and how to fix
it (a MonaError; exit status 2 from the CLI), before anything is written.

torchrun-style variables without a launcher (the check runs before any process group is joined; no test
here starts one), MONA_KIT_CACHE that cannot be a folder, MONA_KIT_PLUGINS mixing 'none' with names,
TRANSFORMERS_OFFLINE named as set, devices mona-kit does not run on, option keys that are not text,
'hf:' without an id, submitit numbers <= 0.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import mona_kit.cli as cli
from mona_kit.errors import ConfigError, MonaError, PluginError

TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def toy_cli(monkeypatch, toy_kit):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    return toy_kit


def toy_argv(tmp_path, *extra: str) -> list[str]:
    return ["run", "task=toy-seq", "task.n_train=32", "backbone=toy-body", "source=toy-text", "method=finetune",
            "train.epochs=1", "train.batch_size=16", f"output_dir={tmp_path}/runs", "run_name=r", "--no-progress",
            "--no-plots", *extra]


def one_line(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


# --- torchrun variables without torchrun ---------------------------------------------------------

RDZV = {"MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("env,message", [
    ({"RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE=2 is set but MASTER_ADDR is not; launch with torchrun"),
    ({"RANK": "0", "MASTER_ADDR": "localhost"}, "WORLD_SIZE=2 is set but MASTER_PORT is not"),
    ({"RANK": "5", **RDZV}, r"RANK=5 is outside 0\.\.1 \(WORLD_SIZE=2\)"),
    ({"RANK": "-1", **RDZV}, r"RANK=-1 is outside 0\.\.1"),
    ({"RANK": "1", "LOCAL_RANK": "2", **RDZV}, r"LOCAL_RANK=2 is outside 0\.\.1"),
    ({"RANK": "one", **RDZV}, "RANK='one' is not an integer"),
    ({**RDZV}, "WORLD_SIZE=2 is set but RANK is not"),
    ({"RANK": "0", "MASTER_ADDR": "localhost", "MASTER_PORT": "99999"}, "MASTER_PORT=99999 is not a TCP port"),
])
def test_torchrun_variables_are_checked_before_joining(env, message, monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from mona_kit.distributed import check_launch_env

    with pytest.raises(ConfigError, match=message):
        check_launch_env(2)


def test_torchrun_variables_as_torchrun_sets_them_pass(monkeypatch):
    from mona_kit.distributed import check_launch_env

    for name, value in {"RANK": "1", "LOCAL_RANK": "1", **RDZV}.items():
        monkeypatch.setenv(name, value)
    assert check_launch_env(2) == (1, 1)
    monkeypatch.delenv("MASTER_ADDR")
    assert check_launch_env(2, joined=True) == (1, 1)  # a group the caller made: no rendezvous needed


@pytest.mark.parametrize("env,message", [
    ({"RANK": "0", "LOCAL_RANK": "0"}, "MASTER_ADDR is not"),
    ({"RANK": "5", **RDZV}, "RANK=5 is outside 0..1"),
])
def test_torchrun_variables_through_the_cli(env, message, toy_cli, tmp_path, monkeypatch, capsys):
    def no_group(*args, **kwargs):
        raise AssertionError("a process group was started")

    monkeypatch.setattr(dist, "init_process_group", no_group)
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    err = one_line(capsys, toy_argv(tmp_path))
    assert message in err and "launch with torchrun" in err
    assert not (tmp_path / "runs").exists()


# --- MONA_KIT_CACHE ------------------------------------------------------------------------------

@pytest.mark.parametrize("where,why", [("afile", "it is a file, not a folder"), ("afile/sub", "Not a directory")])
def test_a_cache_that_cannot_be_a_folder_names_mona_kit_cache(where, why, tmp_path, monkeypatch):
    from mona_kit.data import cache_dir

    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("MONA_KIT_CACHE", str(tmp_path / where))
    with pytest.raises(ConfigError, match=f"MONA_KIT_CACHE='{tmp_path / where}'.*{why}; set MONA_KIT_CACHE to a writable folder"):
        cache_dir()
    assert (tmp_path / "afile").read_text() == "not a folder"


@pytest.mark.parametrize("argv", [
    ["data", "info", "gunpoint"],
    ["gap", "task=gunpoint", "backbone=tiny-bert"],
    ["run", "task=gunpoint", "backbone=tiny-bert", "method=linear", "--no-progress", "--no-plots"],
])
def test_a_bad_cache_through_the_cli(argv, kit, tmp_path, monkeypatch, capsys):
    """gunpoint keeps its tensors in the cache: every verb that reads it stops at the cache folder."""
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("MONA_KIT_CACHE", str(tmp_path / "afile"))
    err = one_line(capsys, [*argv, f"output_dir={tmp_path}/runs"] if argv[0] == "run" else argv)
    assert "MONA_KIT_CACHE=" in err and "it is a file, not a folder" in err and "plugin" not in err
    assert not (tmp_path / "runs").exists()


def test_a_relative_cache_is_resolved_once(tmp_path, monkeypatch):
    from mona_kit.data import cache_dir

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.setenv("MONA_KIT_CACHE", f"rel-cache-{id(tmp_path)}")  # a value no other test resolved
    first = cache_dir()
    monkeypatch.chdir(tmp_path / "b")  # a later chdir does not move the cache
    assert cache_dir() == first == tmp_path / "a" / f"rel-cache-{id(tmp_path)}" and first.is_dir()


# --- MONA_KIT_PLUGINS ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["none,example", "example, none"])
def test_none_with_plugin_names_is_an_error(value, capsys, monkeypatch):
    from mona_kit.plugins import allowed_entry_points

    with pytest.raises(PluginError, match="mixes 'none' .* MONA_KIT_PLUGINS=none to load none, or MONA_KIT_PLUGINS=example"):
        allowed_entry_points(value)
    monkeypatch.setenv("MONA_KIT_PLUGINS", value)
    assert "mixes 'none'" in one_line(capsys, ["plugins"])
    # The documented values (docs/plugins.md) keep their meaning.
    for documented, allowed in ((None, None), ("none", set()), ("", set()), ("a, b", {"a", "b"})):
        assert allowed_entry_points(documented) == allowed


# --- Hugging Face offline variables ---------------------------------------------------------------

@pytest.mark.parametrize("env,named", [
    ({"TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "0"}, "TRANSFORMERS_OFFLINE=1"),
    ({"HF_HUB_OFFLINE": "true"}, "HF_HUB_OFFLINE=true"),
])
def test_offline_names_the_variable_that_is_set(env, named, kit, tmp_path, monkeypatch):
    import mona_plugins.backbones.hf as hf

    for name in ("TRANSFORMERS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(MonaError, match=rf"the hub is offline \({named}\)"):
        hf._download("acme/no-such-model", None, None, name="hf:acme/no-such-model")


# --- devices, option keys, prefixes, submitit -----------------------------------------------------

@pytest.mark.parametrize("device", ["mps", "xpu", "meta"])
def test_a_device_mona_kit_does_not_run_on_is_one_line(device, toy_cli, tmp_path, capsys):
    err = one_line(capsys, toy_argv(tmp_path, f"device={device}"))
    assert f"device {device!r}: mona-kit runs on the CPU or NVIDIA GPUs (CUDA) only" in err and "plugin" not in err
    assert not (tmp_path / "runs").exists()


def test_a_gpu_index_beyond_the_visible_ones(monkeypatch):
    from mona_kit.engine import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"'cuda:5' asked for, but 1 CUDA GPU\(s\) are visible \(cuda:0..cuda:0\)"):
        resolve_device("cuda:5")


@pytest.mark.parametrize("options", [{1: 2}, {None: 1}, {"epochs": 1, 2.5: "x"}])
def test_option_keys_must_be_str(options):
    from mona_kit.config import build_config
    from mona_kit.runconfig import TrainConfig

    with pytest.raises(ConfigError, match="config section 'train': option keys must be str"):
        build_config(TrainConfig, options, where="config section 'train'")


def test_fit_with_a_non_str_option_key_is_a_config_error(toy_kit, tmp_path):
    from mona_kit.api import fit

    with pytest.raises(ConfigError, match="option keys must be str"):
        fit("finetune", "toy-seq", backbone="toy-body", source="toy-text", train={1: 2}, kit=toy_kit)
    with pytest.raises(ConfigError, match="takes no options"):
        from mona_kit.config import build_config

        build_config(None, {1: 2, "a": 3}, where="x")


def test_did_you_mean_takes_any_key():
    from mona_kit.errors import did_you_mean

    assert did_you_mean(1, ["epochs", "lr"]) == ""  # type: ignore[arg-type]
    assert "'lr'" in did_you_mean("lrr", ["lr", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["hf:", "timm:", "hf: "])
def test_a_prefix_without_an_id_is_refused_by_describe(name, kit, capsys, monkeypatch):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    err = one_line(capsys, ["describe", name])
    prefix = name.split(":")[0]
    assert f"lacks the id after the colon; write {prefix}:ID" in err
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", [-1, 0, 0.0, float("nan"), float("inf")])
def test_submitit_memory_must_be_positive(value):
    from mona_kit.launchers import check_submitit_section

    with pytest.raises(ConfigError, match="submitit.mem_gb must be a number > 0"):
        check_submitit_section({"mem_gb": value}, "p")
    assert check_submitit_section({"mem_gb": 0.5}, "p") == {"mem_gb": 0.5}
