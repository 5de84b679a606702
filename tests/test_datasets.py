"""Every offline dataset meets the contract; splits, options and bad files behave."""

import os
from pathlib import Path

import pytest
import torch

from mona_kit.errors import DataError, MonaError
from mona_kit.kit import load_kit
from mona_kit.testing import check_task_data

#: Small caps keep the default run fast; generated tasks also shrink their generation.
SMALL = {"max_train": 64, "max_val": 16, "max_test": 16}
GENERATED = {"n_train": 60, "n_test": 20, "resolution": 32}


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cache")
        mp.setenv("MONA_KIT_CACHE", str(path))
        yield path


def offline_names():
    return [e.name for e in load_kit(entry_points=False).datasets if e.meta.get("offline")]


def small_options(entry):
    opts = dict(SMALL)
    if entry.name in ("advection-1d", "diffusion-reaction-1d"):
        opts.update(GENERATED)
    if entry.meta.get("proxy"):
        opts["max_per_class"] = 40
    return opts


def test_expected_names_registered(kit):
    names = set(kit.datasets.names())
    offline = {"darcy-16", "burgers-1d", "dna-oct4-mafk", "pig-cvp", "basic-motions", "gunpoint", "advection-1d",
               "diffusion-reaction-1d", "rotten-tomatoes", "mnist-5k", "digits"}
    assert offline <= set(offline_names())
    nb = {f"nb360-{t}" for t in ("cifar100", "spherical", "darcy", "psicov", "cosmic", "ninapro", "fsd50k", "ecg", "satellite", "deepsea")}
    pde = {f"pdebench-{t}" for t in ("advection", "burgers", "diffusion-sorption", "diffusion-reaction-1d", "cfd-1d",
                                     "shallow-water", "darcy", "diffusion-reaction-2d", "cfd-2d")}
    assert nb | pde <= names


@pytest.mark.parametrize("name", offline_names())
def test_offline_dataset_contract(kit, name):
    entry = kit.datasets.get(name)
    td = entry.build(small_options(entry))
    check_task_data(td, kit=kit)
    assert len(td.train) <= 64 and len(td.val) <= 16 and len(td.test) <= 16


def test_full_sizes_and_validation_carve(kit):
    td = kit.datasets.get("darcy-16").build({})
    assert (len(td.train), len(td.val), len(td.test), len(td.extra["test-32"])) == (800, 200, 50, 50)  # val: 20 %
    assert td.extra["test-32"][0]["x"].shape == (1, 32, 32)
    # the carve is a partition of the source train split, fixed by split_seed
    again = kit.datasets.get("darcy-16").build({})
    assert torch.equal(td.val.tensors["x"], again.val.tensors["x"])
    other = kit.datasets.get("darcy-16").build({"split_seed": 1})
    assert not torch.equal(td.val.tensors["x"], other.val.tensors["x"])
    both = torch.cat([td.train.tensors["y"], td.val.tensors["y"]]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == 1000
    dna = kit.datasets.get("dna-oct4-mafk").build({})
    assert (len(dna.train) + len(dna.val), len(dna.test)) == (7797, 200)
    assert dna.train[0]["x"].sum(0).max() == 1  # one-hot columns


def test_task_options(kit):
    b = kit.datasets.get("burgers-1d")
    first = b.build({"target_step": 0, "cache": False})
    assert torch.allclose(first.train.tensors["x"], first.train.tensors["y"], atol=1e-5)  # step 0 is the initial condition
    with pytest.raises(MonaError, match="target_step"):  # the option's range, before any file is read
        b.build({"target_step": 17})
    pig = kit.datasets.get("pig-cvp").build({"length": 250})
    assert pig.spec.input_shape == (1, 250) and pig.train[0]["x"].shape == (1, 250)
    assert pig.spec.output_shape == (52,)


def test_text_proxy_caps_per_class(kit):
    td = kit.datasets.get("rotten-tomatoes").build({"max_per_class": 30})
    labels = torch.cat([torch.stack([td.splits()[s][i]["y"] for i in range(len(td.splits()[s]))]) for s in ("train", "val", "test")])
    assert torch.bincount(labels).tolist() == [30, 30, 30]
    assert isinstance(td.train[0]["text"], str) and td.spec.modality == "text"


def test_generated_task_is_cached_and_seeded(kit, cache):
    e = kit.datasets.get("advection-1d")
    a = e.build(GENERATED)
    files = list((cache / "generated").glob("*.pt"))
    assert files, "generated data should be cached"
    mtime = files[0].stat().st_mtime_ns
    b = e.build(GENERATED)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not regenerated
    assert torch.equal(a.test.tensors["y"], b.test.tensors["y"])
    c = e.build({**GENERATED, "seed": 1})
    assert not torch.equal(a.test.tensors["x"], c.test.tensors["x"])


# Bad files ----------------------------------------------------------------------------------------
@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("MONA_KIT_CACHE", str(path))
    return path


def cached_files(path: Path):
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def fake_darcy(folder: Path, train):
    folder.mkdir(parents=True, exist_ok=True)
    ok = {"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.rand(10, 16, 16)}
    torch.save(train, folder / "darcy_train_16.pt")
    torch.save(ok, folder / "darcy_test_16.pt")
    torch.save({"x": torch.zeros(4, 32, 32, dtype=torch.bool), "y": torch.rand(4, 32, 32)}, folder / "darcy_test_32.pt")


@pytest.mark.parametrize(
    "train, match",
    [
        ({"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.rand(10, 16, 15)}, "shape"),
        ({"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.full((10, 16, 16), float("nan"))}, "NaN or Inf"),
        ({"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.rand(9, 16, 16)}, "10 inputs but 9 targets"),
        ({"x": torch.zeros(10, 16, 16, dtype=torch.bool)}, "keys"),
    ],
)
def test_bad_darcy_files(tmp_path, monkeypatch, kit, fresh_cache, train, match):
    from mona_plugins.datasets import neuralop_tasks

    folder = tmp_path / "neuralop"
    fake_darcy(folder, train)
    monkeypatch.setattr(neuralop_tasks, "data_dir", lambda: folder)
    with pytest.raises(DataError, match=match) as info:
        kit.datasets.get("darcy-16").build({})
    assert "darcy_train_16.pt" in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_missing_files(tmp_path, monkeypatch, kit):
    from mona_plugins.datasets import neuralop_tasks

    folder = tmp_path / "neuralop"
    fake_darcy(folder, {"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.rand(10, 16, 16)})
    raw = (folder / "darcy_train_16.pt").read_bytes()
    (folder / "darcy_train_16.pt").write_bytes(raw[: len(raw) // 2])
    monkeypatch.setattr(neuralop_tasks, "data_dir", lambda: folder)
    with pytest.raises(DataError, match="truncated or corrupt"):
        kit.datasets.get("darcy-16").build({})
    os.unlink(folder / "darcy_test_32.pt")
    with pytest.raises(DataError, match=r"missing darcy_test_32.pt in .*neuralop.*pip install"):
        kit.datasets.get("darcy-16").build({})


def test_a_damaged_data_file_is_one_error_and_no_torch_warning(tmp_path, monkeypatch, kit):
    """Bytes that open like a protocol-4 pickle made torch warn above the one-line DataError (the loader
    shares load_torch_file with checkpoints and the tensor cache)."""
    import warnings

    from mona_plugins.datasets import neuralop_tasks

    folder = tmp_path / "neuralop"
    fake_darcy(folder, {"x": torch.zeros(10, 16, 16, dtype=torch.bool), "y": torch.rand(10, 16, 16)})
    (folder / "darcy_train_16.pt").write_bytes(b"\x80\x04garbage that is not a torch file")
    monkeypatch.setattr(neuralop_tasks, "data_dir", lambda: folder)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="truncated or corrupt"):
            kit.datasets.get("darcy-16").build({})
    assert [str(w.message) for w in seen if "pickle protocol" in str(w.message)] == []


def write_fasta(path: Path, seqs):
    path.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))


def test_bad_fasta_is_not_cached(tmp_path, monkeypatch, kit, fresh_cache):
    from mona_plugins.datasets import dna

    res = tmp_path / "janggu"
    (res / "resources").mkdir(parents=True)
    good = ["ACGT" * 5] * 6
    for name in ("sample.fa", "sample2.fa", "sample_test.fa", "sample2_test.fa"):
        write_fasta(res / "resources" / name, good)
    write_fasta(res / "resources" / "sample2.fa", good[:3] + ["ACG"])  # a truncated record
    monkeypatch.setattr(dna, "package_dir", lambda module, hint: res)
    with pytest.raises(DataError, match=r"sample2.fa: record 4 has 3 bases, expected length=20"):
        kit.datasets.get("dna-oct4-mafk").build({"length": 20})
    assert cached_files(fresh_cache) == []
    write_fasta(res / "resources" / "sample2.fa", good)
    td = kit.datasets.get("dna-oct4-mafk").build({"length": 20})
    assert len(td.test) == 12 and cached_files(fresh_cache)


def test_labels_outside_classes(tmp_path, kit):
    from mona_kit.data import check_arrays

    with pytest.raises(DataError, match=r"f.npy: labels span \[0, 5\] but the task declares 3 classes"):
        check_arrays("f.npy", torch.zeros(4, 2), torch.tensor([0, 1, 2, 5]), num_classes=3)
    with pytest.raises(DataError, match="inputs contain NaN or Inf in 1 sample"):
        check_arrays("f.npy", torch.tensor([[0.0], [float("inf")]]), torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(DataError, match="dtype torch.int64, expected floating"):
        check_arrays("f.npy", torch.zeros(2, 2, dtype=torch.long), torch.tensor([0, 1]))
