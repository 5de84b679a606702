"""The chirp-direction dataset: its spec, its samples, its seeds, and that its classes mean what they say."""

import pytest
import torch

from mona_kit.api import ConfigError, TaskData
from mona_kit_example.stft_patch import stft_grid


def build(kit, **options):
    return kit.datasets.get("chirp-direction").build({"n_train": 60, "n_val": 30, "n_test": 30, **options})


def test_spec_names_the_shared_loss_and_metric(example_kit):
    task = build(example_kit)
    assert isinstance(task, TaskData)
    spec = task.spec
    assert (spec.name, spec.task_type, spec.modality) == ("chirp-direction", "classification", "audio")
    assert (spec.loss, spec.metric, spec.higher_is_better) == ("cross-entropy", "zero-one-error", False)
    assert spec.input_shape == (1, 256) and spec.output_shape == (3,) and spec.num_classes == 3
    assert [len(task.train), len(task.val), len(task.test)] == [60, 30, 30]


def test_samples_are_dicts_of_tensors(example_kit):
    task = build(example_kit, channels=2, length=128)
    sample = task.train[0]
    assert sample["x"].shape == (2, 128) and sample["x"].dtype == torch.float32
    assert sample["y"].dtype == torch.long and sample["y"].dim() == 0
    assert set(task.train.y.tolist()) == {0, 1, 2}


def test_same_seed_same_data_other_seed_other_data(example_kit):
    a, b, c = build(example_kit), build(example_kit), build(example_kit, seed=1)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.allclose(a.train.x, c.train.x)
    assert not torch.allclose(a.train.x[:30], a.val.x)  # splits are drawn independently


def test_split_does_not_depend_on_other_split_sizes(example_kit):
    assert torch.equal(build(example_kit).test.x, build(example_kit, n_train=10).test.x)


def dominant_bin_over_time(x: torch.Tensor, n_fft: int = 32) -> torch.Tensor:
    spec = torch.stft(x, n_fft=n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)
    return spec.abs().argmax(dim=-2).float()  # [B, frames]


def test_classes_sweep_up_down_or_stay(example_kit):
    task = build(example_kit, noise=0.0)
    x, y = task.train.x[:, 0], task.train.y
    peak = dominant_bin_over_time(x)[:, 2:-2]  # drop the frames the centre padding distorts
    drift = peak[:, -4:].mean(1) - peak[:, :4].mean(1)
    assert (drift[y == 0] > 3).all()  # up-chirps rise
    assert (drift[y == 1] < -3).all()  # down-chirps fall
    assert (drift[y == 2].abs() <= 1).all()  # tones stay


def test_up_and_down_chirps_share_a_magnitude_spectrum_range(example_kit):
    """Why this task needs time-frequency tokens: a reversed up-chirp is a down-chirp, same |FFT|."""
    up = build(example_kit, noise=0.0).train.x[:, 0][build(example_kit).train.y == 0][0]
    assert torch.allclose(torch.fft.rfft(up).abs(), torch.fft.rfft(up.flip(0)).abs(), atol=1e-3)
    bins, frames = stft_grid(256, 32, 8)
    assert (bins, frames) == (17, 33)


def test_unknown_option_is_a_one_line_config_error(example_kit):
    with pytest.raises(ConfigError, match="Did you mean 'n_train'") as err:
        build(example_kit, n_trian=5)
    assert "\n" not in str(err.value)
