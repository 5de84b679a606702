"""mona-kit's own contract checks (mona_kit.testing), the ones every plugin author runs."""

import pytest

testing = pytest.importorskip("mona_kit.testing", reason="this mona-kit has no mona_kit.testing")


def test_chirp_direction_meets_the_task_data_contract(example_kit):
    task = example_kit.datasets.get("chirp-direction").build({"n_train": 32, "n_val": 16, "n_test": 16})
    testing.check_task_data(task, kit=example_kit)


@pytest.mark.parametrize("options", [{}, {"n_fft": 64, "hop": 16, "patch": 2, "log_magnitude": False}])
def test_stft_patch_meets_the_embedder_contract(example_kit, body, options):
    spec = example_kit.datasets.get("chirp-direction").build({"n_train": 8, "n_val": 8, "n_test": 8, "channels": 2}).spec
    embedder = example_kit.embedders.get("stft-patch").build(options, task=spec, body=body)
    testing.check_embedder(embedder, spec, body)
