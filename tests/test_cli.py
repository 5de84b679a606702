"""The command line: verbs work, bad input is one line with exit status 2, runs leave full records."""

import json
import os
import subprocess
import sys

import pytest
import yaml

import mona_kit.cli as cli


@pytest.fixture
def toy_cli(monkeypatch, toy_kit):
    """The CLI with the toy kit (no weights, no data files)."""
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    return toy_kit


def one_line_error(capsys, code, argv):
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def toy_config(tmp_path, **extra):
    cfg = {
        "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
        "method": "finetune", "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"),
        "run_name": "r1", **extra,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_list_and_describe(toy_cli, capsys):
    assert cli.main(["list", "backbones"]) == 0
    assert "toy-body" in capsys.readouterr().out
    assert cli.main(["describe", "toy-body"]) == 0
    out = capsys.readouterr().out
    assert "provided by: toy_plugin" in out and "pretrained: bool = True" in out
    assert cli.main(["list", "datasets", "toy-t*", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["toy-text"]


def test_unknown_name_is_one_line(toy_cli, capsys):
    err = one_line_error(capsys, 2, ["describe", "toy-bodi"])
    assert "Did you mean 'toy-body'" in err


def test_missing_config_file(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, 2, ["run", str(tmp_path / "nope.yaml")])
    assert "does not exist" in err


def test_config_key_typo(toy_cli, capsys, tmp_path):
    path = toy_config(tmp_path, trian={"epochs": 1})
    err = one_line_error(capsys, 2, ["run", str(path)])
    assert "unknown config key 'trian'. Did you mean 'train'" in err


def test_bad_config_value(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "train.epochs=many"])
    assert "'epochs' must be int" in err


def test_unknown_method_before_training(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "method=finetuen"])
    assert "unknown method 'finetuen'. Did you mean 'finetune'" in err
    assert not (tmp_path / "runs").exists()


def test_unknown_method_option(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "method=mona", "method.lamda=0.3"])
    assert "has no option 'lamda'. Did you mean 'lam'" in err


def test_run_writes_records_and_refuses_to_overwrite(toy_cli, capsys, tmp_path):
    path = toy_config(tmp_path, diagnostics={"reuse_every": 1, "reuse_samples": 20})
    assert cli.main(["run", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "r1"
    assert "| finetune | toy-seq |" in out and "knowledge-reuse.png" in out
    for name in ("config.yaml", "env.json", "metrics.jsonl", "results.json"):
        assert (run_dir / name).is_file(), name
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["embedder"]["name"] == "toy-seq-embed" and resolved["task"]["n_train"] == 32
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) >= {"val", "test", "wall_time_s", "peak_memory_mb", "seed"}
    assert "peak_gpu_memory_mb" not in results  # a CPU run has no GPU memory to report

    env = json.loads((run_dir / "env.json").read_text())
    assert env["seed"] == 0 and env["versions"]["torch"]
    assert "cpu_model" in env  # which CPU's kernels rounded the numbers
    if os.path.exists("/proc/cpuinfo"):
        assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "knowledge-reuse" for e in events)
    before = (run_dir / "results.json").read_text()
    err = one_line_error(capsys, 2, ["run", str(path)])
    assert "already exists; pass --overwrite" in err
    assert (run_dir / "results.json").read_text() == before


def test_peak_gpu_memory_is_read_on_cuda_only(monkeypatch):
    """The CUDA branch, without a GPU: torch's allocator counters stand in for one."""
    import torch

    from mona_kit.runner import peak_gpu_memory_mb

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20 + 2**19)
    assert peak_gpu_memory_mb(torch.device("cuda", 0)) == 3.5
    assert peak_gpu_memory_mb(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # CUDA never touched: nothing to read
    assert peak_gpu_memory_mb(torch.device("cuda", 0)) is None


def test_each_run_starts_its_own_gpu_peak(monkeypatch):
    """Two runs in one process: the second's peak must not be the first's. A fake allocator counter
    stands in for a GPU; the reset happens on CUDA only, and not before CUDA is in use."""
    import torch

    from mona_kit.runner import peak_gpu_memory_mb, reset_peak_gpu_memory

    counter = {"peak": 0}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: counter["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: counter.update(peak=0))
    cuda = torch.device("cuda", 0)
    reset_peak_gpu_memory(cuda)
    counter["peak"] = 8 * 2**20  # the first run
    assert peak_gpu_memory_mb(cuda) == 8
    reset_peak_gpu_memory(torch.device("cpu"))  # a CPU run leaves the counter alone
    assert peak_gpu_memory_mb(cuda) == 8
    reset_peak_gpu_memory(cuda)  # the second run begins
    counter["peak"] = max(counter["peak"], 2 * 2**20)
    assert peak_gpu_memory_mb(cuda) == 2
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: pytest.fail("reset before CUDA was used"))
    reset_peak_gpu_memory(cuda)


def test_every_run_of_run_methods_resets_the_gpu_peak(toy_cli, capsys, tmp_path, monkeypatch):
    import mona_kit.runner

    devices = []
    monkeypatch.setattr(mona_kit.runner, "reset_peak_gpu_memory", devices.append)
    path = toy_config(tmp_path, run_name=None)
    assert cli.main(["run", str(path), "--methods", "finetune,scratch", "--no-progress", "--no-plots"]) == 0, capsys.readouterr().err
    assert [d.type for d in devices] == ["cpu", "cpu"]  # once per run, on the run's own device


def test_resume_of_a_finished_run_keeps_results(toy_cli, capsys, tmp_path):
    path = toy_config(tmp_path)
    assert cli.main(["run", str(path), "--no-progress", "--no-plots"]) == 0
    run_dir = tmp_path / "runs" / "r1"
    first = json.loads((run_dir / "results.json").read_text())
    assert cli.main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    again = json.loads((run_dir / "results.json").read_text())
    assert again["test"] == first["test"]


def test_same_seed_same_metrics(toy_cli, capsys, tmp_path):
    path = toy_config(tmp_path)
    assert cli.main(["run", str(path), "--no-progress", "--no-plots"]) == 0
    assert cli.main(["run", str(path), "--no-progress", "--no-plots", "run_name=r2"]) == 0
    a = json.loads((tmp_path / "runs" / "r1" / "results.json").read_text())
    b = json.loads((tmp_path / "runs" / "r2" / "results.json").read_text())
    assert a["test"] == b["test"] and a["val"] == b["val"]


def test_debug_shows_the_traceback(toy_cli):
    with pytest.raises(Exception, match="toy-bodi"):
        cli.main(["--debug", "describe", "toy-bodi"])
    with pytest.raises(Exception, match="toy-bodi"):  # after the verb too, where users add it on a second try
        cli.main(["describe", "toy-bodi", "--debug"])


def test_an_abbreviated_flag_is_refused_not_guessed(toy_cli, capsys, tmp_path):
    """argparse would read --overwrit as --overwrite, a flag that replaces a run directory."""
    path = toy_config(tmp_path)
    assert cli.main(["run", str(path), "--no-progress"]) == 0
    before = (tmp_path / "runs" / "r1" / "results.json").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        cli.main(["run", str(path), "--overwrit"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --overwrit" in capsys.readouterr().err
    assert (tmp_path / "runs" / "r1" / "results.json").read_text() == before


def test_subprocess_exit_status_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "mona_kit", "describe", "no-such-thing"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("mona-kit: error: no component is named 'no-such-thing'")
    assert "Traceback" not in proc.stderr


def test_a_closed_output_pipe_does_not_stop_the_work(tmp_path):
    """'mona-kit run ... | head -1': the reader leaves after one line; every method still runs and the
    exit status is 0 because the work was done (it once stopped after the first method, status 0)."""
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "mona_kit", "run", "--methods", "mean,linear", "task=gunpoint",
                             "backbone=tiny-bert", f"output_dir={out}", "--no-progress", "--no-plots"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert sorted(p.parent.name.split("-")[0] for p in out.glob("*/results.json")) == ["linear", "mean"]


def test_hooks_verb_lists_every_hook(capsys):
    from mona_kit.kit import HOOKS

    assert cli.main(["hooks"]) == 0
    out = capsys.readouterr().out
    assert all(h in out for h in HOOKS)


def test_method_objective_of_the_wrong_role_fails_before_training(toy_cli, capsys, tmp_path):
    err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "method=mona", "method.objective=toy-ce"])
    assert "has role 'task-loss'; MoNA's outer loss needs a representation objective" in err
    assert not (tmp_path / "runs").exists()


def test_source_proxy_without_labels_is_refused(toy_cli, toy_kit, capsys, tmp_path):
    import attrs

    import toy_plugin

    unlabelled = attrs.evolve(toy_plugin.make_text_proxy().spec, task_type="regression")
    entry = toy_kit.datasets.get("toy-text")
    original = entry.factory
    object.__setattr__(entry, "factory", lambda: attrs.evolve(original(), spec=unlabelled))
    try:
        err = one_line_error(capsys, 2, ["run", str(toy_config(tmp_path)), "method=mona", "method.objective=toy-align-uniform"])
    finally:
        object.__setattr__(entry, "factory", original)
    assert "needs a labelled source proxy (classification), but 'toy-text' is regression" in err
