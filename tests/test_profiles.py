"""Every committed sweep profile expands to cells whose configs pass the checks ``mona-kit run`` makes,
so an edit that breaks a profile fails here rather than hours into a sweep."""

import re
from pathlib import Path

import pytest

from mona_kit.sweep_profile import METHOD_OPTIONS, cells, read_profile

PROFILE_DIR = Path(__file__).parents[1] / "benchmarks" / "profiles"
PROFILES = sorted(PROFILE_DIR.glob("*.yaml"))


def read_named(name: str) -> dict:
    """A committed profile by its file stem (``main-cpu`` -> benchmarks/profiles/main-cpu.yaml)."""
    return read_profile(PROFILE_DIR / f"{name}.yaml")


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_profile_expands_to_valid_cells(path, kit):
    profile = read_profile(path)
    expanded = list(cells(profile, kit))  # raises ConfigError naming the cell on a bad config
    keys = [c.key for c in expanded]
    assert len(keys) == len(set(keys))
    methods = {c.method for c in expanded}
    assert len(expanded) == len(methods) * len(profile["tasks"]) * len(profile["seeds"])


def test_reproduction_profiles_include_recraft(kit):
    """Issue 16: RECRAFT is a row of the reproduction tables and of the alignment variants."""
    for name in ("main-cpu", "gpu"):
        profile = read_named(name)
        assert "recraft" in {c.method for c in cells(profile, kit)}, name
    variants = read_named("variants-main-cpu")
    recraft = {c.config["method"]["objective"] for c in cells(variants, kit) if c.method.startswith("recraft-")}
    assert recraft == {e.name for e in kit.objectives if e.meta.get("role") == "distance"}


#: Profiles whose tables answer "does transfer help here": each needs the reference rows to read against.
REPRODUCTION_PROFILES = ("main-cpu", "small-cpu", "gpu")
REFERENCES = {"mean", "linear", "knn", "specialist"}


@pytest.mark.parametrize("name", REPRODUCTION_PROFILES)
def test_reproduction_profiles_carry_reference_rows(name, kit):
    """A transfer number is only worth showing beside the mean predictor, a linear model, 1-NN and a
    from-scratch specialist (issue 12): a reproduction profile without them makes a table that cannot
    say whether anything learned."""
    profile = read_named(name)
    methods = {c.config["method"]["name"] for c in cells(profile, kit)}
    assert REFERENCES <= methods, sorted(REFERENCES - methods)


def test_variants_profile_trains_at_the_main_tables_budgets():
    """Item 6 compares alignment objectives against main-cpu's rows, so its cells must train as
    main-cpu's do: when a main-cpu task is revised (r4, r5), the variants profile follows. Reference
    rows' method_options are main-cpu's own (the variants profile has no reference rows)."""
    main, variants = read_named("main-cpu"), read_named("variants-main-cpu")

    def training(profile):
        return {label: {k: v for k, v in entry.items() if k != METHOD_OPTIONS} for label, entry in profile["tasks"].items()}

    assert variants["base"] == main["base"]
    assert training(variants) == training(main)
    assert variants["seeds"] == main["seeds"]


#: Where the project tells readers which sweep to run: the docs and the profiles' own usage comments.
DOC_FILES = [Path(__file__).parents[1] / name for name in ("README.md", "CONTRIBUTING.md")] + sorted(
    (Path(__file__).parents[1] / "docs").glob("*.md")
) + PROFILES
SWEEP_LINE = re.compile(r"mona-kit sweep benchmarks/profiles/([\w.-]+\.yaml)((?: +--[\w-]+(?: +[^\s`|#-][^\s`|#]*)?)*)")


def documented_sweeps() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOC_FILES:
        for match in SWEEP_LINE.finditer(doc.read_text(encoding="utf-8")):
            found.append((doc.name, match.group(1), match.group(2)))
    return found


def test_the_docs_name_sweeps_that_exist(kit):
    """A documented ``mona-kit sweep PROFILE --only/--tasks/--seeds ...`` names a committed profile and
    only labels and seeds it has: a renamed column (darcy-16 -> darcy-16-p2) must not leave a command
    that fails with 'unknown task label'."""
    sweeps = documented_sweeps()
    assert len(sweeps) >= 20 and any("--tasks" in options for _, _, options in sweeps)
    labels: dict[str, dict[str, set[str]]] = {}  # profile -> flag -> its labels, expanded once per profile
    for doc, name, options in sweeps:
        assert (PROFILE_DIR / name).is_file(), f"{doc}: no profile {name}"
        if name not in labels:
            profile = read_profile(PROFILE_DIR / name)
            labels[name] = {"--only": {c.method for c in cells(profile, kit)}, "--tasks": set(profile["tasks"]),
                            "--seeds": {str(s) for s in profile["seeds"]}}
        words = options.split()
        for flag, have in labels[name].items():
            if flag in words:
                listed = words[words.index(flag) + 1].split(",")
                assert set(listed) <= have, f"{doc}: {name} {flag} {','.join(listed)}: not in the profile ({sorted(have)})"
