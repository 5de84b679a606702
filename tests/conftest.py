import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

torch.set_num_threads(1)


@pytest.fixture
def toy_kit():
    """A fresh kit with only the methods plugin and the toy plugin: no weights, no data files."""
    import toy_plugin

    from mona_kit.kit import load_kit

    return load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=[toy_plugin])


@pytest.fixture(scope="module")
def kit():
    """Every first-party plugin, no third-party ones."""
    from mona_kit.kit import load_kit

    return load_kit(entry_points=False)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, so cached tensors never leak between tests."""
    monkeypatch.setenv("MONA_KIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def cli_kit(monkeypatch):
    """Point the CLI at a kit built for the test."""
    import mona_kit.kit

    def use(kit):
        monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
        return kit

    return use
