"""The plugin as mona-kit sees it: a light import, exactly its two components, public API only."""

import ast
import subprocess
import sys
from pathlib import Path

import mona_kit.api as mona_api
import mona_kit_example

PACKAGE = Path(mona_kit_example.__file__).parent
PUBLIC = set(mona_api.__all__)  # the one declared public surface (docs/python-api.md lists it)


def test_contributes_one_dataset_and_one_embedder(example_kit):
    assert example_kit.contributions("mona_kit_example") == {"datasets": ["chirp-direction"], "embedders": ["stft-patch"]}
    for name in ("chirp-direction", "stft-patch"):
        assert example_kit.find(name)[0].summary


def test_import_does_not_load_torch():
    code = "import sys, mona_kit_example; assert 'torch' not in sys.modules, 'torch imported at plugin import'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_uses_only_the_public_api():
    """The same rule as mona-kit's own check of its first-party plugins: names of mona_kit.api only."""
    for path in [*PACKAGE.glob("*.py"), *Path(__file__).parent.glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mona_kit":
                assert node.module == "mona_kit.api", f"{path.name} imports {node.module}"
                assert {a.name for a in node.names} <= PUBLIC, f"{path.name} imports private names"
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "mona_kit" or a.name == "mona_kit.api" for a in node.names), path.name
            assert not (isinstance(node, ast.Attribute) and node.attr == "cuda"), f"{path.name} calls .cuda()"
