"""Fixtures for the example plugin's own tests.

Each test builds a fresh kit with this plugin passed in directly (``extra=[mona_kit_example]``),
so the tests work whether or not the distribution is installed and never see other installed
plugins. The body, head, loss and metric come from mona-kit's first-party plugins.
"""

from __future__ import annotations

import pytest
import torch

import mona_kit_example
from mona_kit.api import load_kit

torch.set_num_threads(1)

#: mona-kit's tiny random BERT: a real transformer body, fast enough for every test.
TINY_BODY = "tiny-bert"


@pytest.fixture
def example_kit():
    """First-party plugins plus this one."""
    return load_kit(entry_points=False, extra=[mona_kit_example])


@pytest.fixture
def body(example_kit):
    return example_kit.backbones.get(TINY_BODY).build()
