"""The entry-point path, for real: build and install plugin distributions, then ask the CLI.

Installing into the shared venv would change every other test's kit, so each distribution is
built as a wheel and installed with ``pip install --no-deps --no-build-isolation --target DIR``
(dist-info and entry points included); subprocesses see it through ``PYTHONPATH=DIR``.
The sources are copied to a temporary folder first so the build leaves nothing in the repo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "mona-kit-example"


def pip_install_target(source: Path, target: Path) -> None:
    """A real wheel build and install of ``source`` into ``target`` (offline, no dependencies)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"pip could not build and install {source.name}:\n{result.stderr}")


def start_mona_kit(args: list[str], path: Path, plugins: str | None = None) -> subprocess.Popen:
    """``python -m mona_kit ARGS`` seeing the distributions installed in ``path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MONA_KIT_PLUGINS", "MONA_KIT_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if plugins is not None:
        env["MONA_KIT_PLUGINS"] = plugins
    return subprocess.Popen(
        [sys.executable, "-m", "mona_kit", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("src") / "mona-kit-example"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    pip_install_target(source, target)
    return target


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """A distribution whose plugin module raises at import."""
    source = tmp_path_factory.mktemp("broken-src")
    (source / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mona-kit-broken"
        version = "0.0.1"

        [project.entry-points.mona_kit]
        broken = "mona_kit_broken"

        [tool.setuptools]
        py-modules = ["mona_kit_broken"]
    """))
    (source / "mona_kit_broken.py").write_text("raise RuntimeError('deliberately broken at import')\n")
    target = tmp_path_factory.mktemp("broken-site")
    pip_install_target(source, target)
    return target


@pytest.fixture(scope="module")
def cli(example_site, broken_site) -> dict[str, tuple[int, str, str]]:
    """Every CLI call the tests inspect, started side by side (each pays torch's import once):
    name -> (exit status, stdout, stderr)."""
    calls = {
        "all": (["plugins", "--json"], example_site, None),
        "none": (["plugins", "--json"], example_site, "none"),
        "only-example": (["plugins", "--json"], example_site, "example"),
        "broken": (["plugins"], broken_site, None),
        "broken-skipped": (["plugins"], broken_site, "none"),
    }
    started = {name: start_mona_kit(*call) for name, call in calls.items()}
    results = {}
    for name, proc in started.items():
        out, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, out, err)
    return results


def listed_plugins(cli, call: str) -> dict[str, dict]:
    status, out, err = cli[call]
    assert status == 0, err
    return {row["name"]: row for row in json.loads(out)}


def test_installed_plugin_is_listed_with_version_and_components(example_site, cli):
    assert (example_site / "mona_kit_example-0.1.0.dist-info" / "entry_points.txt").is_file()
    row = listed_plugins(cli, "all")["example"]
    assert (row["distribution"], row["version"], row["builtin"]) == ("mona-kit-example", "0.1.0", False)
    assert row["components"] == {"datasets": ["chirp-direction"], "embedders": ["stft-patch"]}


def test_env_var_selects_third_party_plugins(cli):
    assert "example" not in listed_plugins(cli, "none")
    selected = listed_plugins(cli, "only-example")
    assert "example" in selected and "mona_plugins.methods" in selected  # built-ins always load


def test_broken_plugin_is_one_line_naming_it(cli):
    status, out, err = cli["broken"]
    assert status == 2 and out == ""
    err = err.strip()
    assert "\n" not in err and "Traceback" not in err
    for part in ("'broken'", "mona_kit_broken", "mona-kit-broken 0.0.1", "RuntimeError: deliberately broken at import"):
        assert part in err, part
    # Each label names what follows it (they were swapped: "plugin 'broken' (entry point mona_kit_broken").
    assert "entry point 'broken' (module mona_kit_broken, distribution mona-kit-broken 0.0.1)" in err
    assert cli["broken-skipped"][0] == 0  # the way out the message advertises works


def test_plugin_verb_follows_the_hook_spec(monkeypatch, capsys):
    """register_commands as documented: ``register(name, configure, handler, *, summary="")``."""
    import types

    import mona_kit.cli as cli
    import mona_kit.kit
    from mona_kit.hookspecs import hookimpl

    def configure(parser):
        parser.add_argument("--times", type=int, default=1)

    def handler(args, kit):
        print("chirp " * args.times + f"({len(kit.commands)} plugin verb)")
        return 0

    plugin = types.ModuleType("verb_plugin")
    plugin.register_commands = hookimpl(lambda register: register("chirp", configure, handler, summary="say chirp"))
    kit = mona_kit.kit.load_kit(builtins=[], entry_points=False, extra=[plugin])
    assert kit.commands.get("chirp").summary == "say chirp"
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    assert cli.main(["chirp", "--times", "2"]) == 0
    assert capsys.readouterr().out.strip() == "chirp chirp (1 plugin verb)"
