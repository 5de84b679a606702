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
