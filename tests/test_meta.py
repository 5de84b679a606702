"""Meta-tests: every hook is documented and exercised, every first-party component explains
itself, every CLI verb has its module and its documentation (in the style of datasette's)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from mona_kit import hookspecs
from mona_kit.cli import VERBS
from mona_kit.kit import HOOKS, load_kit

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
HOOK_DOCS = ROOT / "docs" / "hooks.md"
SPECS = sorted(n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, f"{hookspecs.PROJECT}_spec"))


def test_the_kit_calls_every_hook_spec():
    assert SPECS and set(SPECS) == set(HOOKS)


@pytest.mark.parametrize("hook", SPECS)
def test_hook_has_a_section_in_docs(hook):
    headings = re.findall(r"^#+\s+`?(\w+)", HOOK_DOCS.read_text(), flags=re.M)
    assert hook in headings, f"docs/hooks.md needs a '## {hook}' section"


@pytest.mark.parametrize("hook", SPECS)
def test_hook_is_exercised_by_a_test(hook):
    """Some test file (or the toy plugin the core tests load) names the hook."""
    users = [p.name for p in TESTS.glob("*.py") if p.name != Path(__file__).name and hook in p.read_text()]
    assert users, f"no test under tests/ exercises {hook}; add one (tests/toy_plugin.py implements most hooks)"


def test_toy_plugin_implements_hooks_and_is_loaded_by_the_fixture():
    import toy_plugin

    implemented = {n for n in SPECS if hasattr(getattr(toy_plugin, n, None), f"{hookspecs.PROJECT}_impl")}
    assert len(implemented) >= 5
    assert "toy_plugin" in (TESTS / "conftest.py").read_text()


@pytest.fixture(scope="module")
def first_party_kit():
    return load_kit(entry_points=False)


def test_no_first_party_hook_impl_is_pending(first_party_kit):
    first_party_kit.pm.check_pending()  # raises PluginValidationError on an impl no spec matches


def test_every_first_party_component_has_a_summary(first_party_kit):
    silent = [
        f"{kind}: {entry.name}"
        for kind, registry in first_party_kit.registries.items()
        for entry in registry
        if entry.provider.distribution == "mona-kit" and not entry.summary.strip()
    ]
    silent += [
        f"{kind}: {prefix}:..."
        for kind, registry in first_party_kit.registries.items()
        for prefix, (provider, summary) in registry.prefixes().items()
        if provider.distribution == "mona-kit" and not summary.strip()
    ]
    assert not silent, f"registered without a summary: {silent}"


def test_contributing_maps_every_core_module():
    """CONTRIBUTING's "Where things live" names every module of mona_kit/, and only real ones."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+\.py)`", section))
    modules = {p.name for p in (ROOT / "mona_kit").glob("*.py") if p.name != "__init__.py"}
    assert modules - named == set(), "add these modules to CONTRIBUTING.md's 'Where things live'"
    assert named - modules == set(), "CONTRIBUTING.md's 'Where things live' names modules that do not exist"


@pytest.mark.parametrize("verb", VERBS)
def test_cli_verb_has_a_command_module(verb):
    module = importlib.import_module(f"mona_kit.commands.{verb.replace('-', '_')}")
    for name, arity in (("configure", 1), ("run", 2)):
        fn = getattr(module, name, None)
        assert callable(fn), f"mona_kit.commands.{verb} needs {name}()"
        assert len(inspect.signature(fn).parameters) == arity, f"mona_kit.commands.{verb}.{name} takes {arity} argument(s)"


def user_docs() -> str:
    """README.md (when it exists) and every page under docs/."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text() for p in pages if p.is_file())


@pytest.mark.parametrize("verb", VERBS)
def test_cli_verb_is_documented(verb):
    """Named as ``mona-kit VERB`` or as the first cell of a verb table row (README's command table)."""
    pattern = rf"mona-kit {re.escape(verb)}\b|^\|\s*`{re.escape(verb)}\b"
    assert re.search(pattern, user_docs(), flags=re.M), f"document 'mona-kit {verb}' in README.md or docs/"
