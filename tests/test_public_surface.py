"""One declared public surface (issue 13, item 2): ``mona_kit.api.__all__``, listed once in the docs,
is all that first-party plugins and the example plugin import from mona_kit; the core names no component."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mona_kit
import mona_kit.api as api

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_TREES = [ROOT / "plugins" / "mona_plugins", ROOT / "plugins" / "mona-kit-example"]
#: modules a plugin may import from, with the names each allows (``mona_kit.testing`` is public as a whole).
ALLOWED = {"mona_kit": set(mona_kit.__all__), "mona_kit.api": set(api.__all__), "mona_kit.testing": None}


def non_public_imports(path: Path) -> list[str]:
    """Every ``mona_kit`` import or attribute in a file that is not part of the public surface."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "mona_kit":
            allowed = ALLOWED.get(node.module, set())
            if node.module not in ALLOWED:
                bad.append(f"{path.name}:{node.lineno} from {node.module}")
            elif allowed is not None:
                bad += [f"{path.name}:{node.lineno} {node.module}.{a.name}" for a in node.names if a.name not in allowed]
        elif isinstance(node, ast.Import):
            bad += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names
                    if a.name.split(".")[0] == "mona_kit" and a.name not in ALLOWED]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "mona_kit":
            if node.attr not in ALLOWED["mona_kit"] and node.attr not in ("api", "testing"):
                bad.append(f"{path.name}:{node.lineno} mona_kit.{node.attr}")
    return bad


def plugin_files() -> list[Path]:
    return sorted(p for tree in PLUGIN_TREES for p in tree.rglob("*.py") if ".egg-info" not in str(p))


def test_first_party_and_example_plugins_import_only_the_public_surface():
    files = plugin_files()
    assert len(files) > 40  # the scan really sees the plugins (and their tests)
    bad = [b for path in files for b in non_public_imports(path)]
    assert not bad, "non-public mona_kit imports in plugins: " + "; ".join(bad)


def test_the_scan_catches_a_private_import(tmp_path):
    """The check would have caught what the plugins did before (engine.masked_mean, checkpoint.set_rng_state ...)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from mona_kit.engine import masked_mean\nfrom mona_kit.api import fit, _WHERE\nimport mona_kit.stages\n"
        "import mona_kit\nx = mona_kit.checkpoint\n"
    )
    found = non_public_imports(bad)
    assert [f.split(" ", 1)[1] for f in found] == [
        "from mona_kit.engine", "mona_kit.api._WHERE", "import mona_kit.stages", "mona_kit.checkpoint"]


def test_every_public_name_resolves_and_the_package_reexports_a_subset():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(mona_kit.__all__) - {"__version__"} <= set(api.__all__)
    for name in set(mona_kit.__all__) - {"__version__"}:
        assert getattr(mona_kit, name) is getattr(api, name)
    with pytest.raises(AttributeError, match="public names are mona_kit.api.__all__"):
        api.engine  # noqa: B018 - an internal module is not reachable through the surface


def test_the_surface_is_light_to_import():
    """A plugin's top-level ``from mona_kit.api import hookimpl, config, option`` must not load torch."""
    code = ("import sys\nfrom mona_kit.api import hookimpl, config, option, MonaError, SEED_MAX\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:3]")
    subprocess.run([sys.executable, "-c", code], check=True)


def documented_names() -> list[str]:
    """The names in docs/python-api.md's one table of the public surface."""
    text = (ROOT / "docs" / "python-api.md").read_text()
    section = text.split("## The public surface", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_]+)`", section, re.MULTILINE)


def test_one_doc_lists_the_surface_exactly():
    names = documented_names()
    assert sorted(names) == sorted(api.__all__)
    assert len(names) == len(set(names))


DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "plugins" / "mona-kit-example" / "README.md"]
INTERNAL = re.compile(r"mona_kit\.(?!api\b|testing\b)([a-z_]+)\.")


def test_no_doc_teaches_an_internal_module():
    """The other docs link to the one list; none of them names an internal module as something to import."""
    bad = []
    for doc in DOCS:
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for match in INTERNAL.finditer(line):
                if "mona_kit/" not in line:  # file paths (mona_kit/hookspecs.py) are not imports
                    bad.append(f"{doc.name}:{lineno} mona_kit.{match.group(1)}")
            if re.search(r"(from|import) mona_kit\.(?!api\b|testing\b)", line):
                bad.append(f"{doc.name}:{lineno} {line.strip()}")
    assert not bad, "docs name internal modules: " + "; ".join(bad)


def test_the_core_names_no_component():
    """Default source proxies come from backbone metadata, the plots' final stage from stage metadata."""
    kit = mona_kit.load_kit(entry_points=False)
    proxies = {kit.backbones.get(n).meta["source_proxy"] for n in kit.backbones.names()}
    assert proxies == {"rotten-tomatoes", "mnist-5k"}  # every first-party body names its proxy
    core = {p: p.read_text() for p in (ROOT / "mona_kit").rglob("*.py")}
    for path, text in core.items():
        for name in proxies:
            assert f'"{name}"' not in text, f"{path.name} names the source proxy {name!r}"
    plotting = core[ROOT / "mona_kit" / "plotting.py"]
    for stage in ("finetune", "refine", "fpt", "pare", "linear-probe"):
        assert f'"{stage}"' not in plotting, f"plotting.py names the stage {stage!r}"
