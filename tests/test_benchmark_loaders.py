"""NAS-Bench-360 and PDEBench loaders on tiny files written here in the published formats."""

import gzip
import os
import pickle

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from mona_kit.errors import DataError
from mona_kit.testing import check_task_data


pytestmark = pytest.mark.usefixtures("isolated_cache")


rng = np.random.default_rng(0)


def build(kit, name, root, **opts):
    td = kit.datasets.get(name).build({"root": str(root), **opts})
    check_task_data(td, kit=kit)
    return td


# NAS-Bench-360 -------------------------------------------------------------------------------------
def test_cifar100_python_batches(kit, tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 20), ("test", 6)):
        data = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": list(rng.integers(0, 100, n)), b"coarse_labels": [0] * n}
        with open(folder / split, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    td = build(kit, "nb360-cifar100", tmp_path)
    assert (len(td.train) + len(td.val), len(td.test)) == (20, 6) and td.test[0]["x"].shape == (3, 32, 32)


def test_spherical_gz(kit, tmp_path):
    d = {s: {"images": rng.integers(0, 256, (n, 3, 60, 60), dtype=np.uint8), "labels": rng.integers(0, 100, n)} for s, n in (("train", 12), ("test", 4))}
    with gzip.open(tmp_path / "s2_cifar100.gz", "wb") as fh:
        pickle.dump(d, fh)
    td = build(kit, "nb360-spherical", tmp_path)
    assert len(td.test) == 4 and float(td.test[0]["x"].max()) <= 1.0


def test_darcy_mat(kit, tmp_path):
    for name, n in (("piececonst_r421_N1024_smooth1.mat", 3), ("piececonst_r421_N1024_smooth2.mat", 2)):
        scipy.io.savemat(tmp_path / name, {"coeff": rng.uniform(3, 12, (n, 421, 421)), "sol": rng.uniform(0, 1, (n, 421, 421))})
    td = build(kit, "nb360-darcy", tmp_path)
    assert td.spec.input_shape == (1, 85, 85) and td.test[0]["y"].shape == (1, 85, 85)
    sol = scipy.io.loadmat(tmp_path / "piececonst_r421_N1024_smooth2.mat")["sol"]
    assert np.allclose(td.test[0]["y"][0].numpy(), sol[0, ::5, ::5], atol=1e-6)
    grid = build(kit, "nb360-darcy", tmp_path, grid_channels=True)
    assert grid.train[0]["x"].shape == (3, 85, 85)


def save_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_psicov_cosmic_fsd50k_npz(kit, tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        save_npz(tmp_path / f"protein/psicov_{split}.npz", x=rng.normal(size=(n, 57, 128, 128)).astype(np.float32), y=rng.uniform(2, 20, (n, 1, 128, 128)).astype(np.float32))
        save_npz(tmp_path / f"cosmic/cosmic_{split}.npz", x=rng.normal(size=(n, 1, 128, 128)).astype(np.float32), y=(rng.uniform(size=(n, 1, 128, 128)) > 0.9).astype(np.float32))
    for split, n in (("train", 5), ("val", 2), ("test", 2)):
        save_npz(tmp_path / f"fsd50k/fsd50k_{split}.npz", x=rng.normal(size=(n, 1, 96, 102)).astype(np.float32), y=(rng.uniform(size=(n, 200)) > 0.95).astype(np.float32))
    assert build(kit, "nb360-psicov", tmp_path).spec.metric == "mae8"
    assert build(kit, "nb360-cosmic", tmp_path).spec.metric == "one-minus-auroc"
    fsd = build(kit, "nb360-fsd50k", tmp_path)
    assert (len(fsd.train), len(fsd.val), len(fsd.test)) == (5, 2, 2)  # the published val split is kept


def write_ninapro(root, labels_train=None):
    folder = root / "ninaPro"
    folder.mkdir(exist_ok=True)
    for split, n in (("train", 8), ("val", 3), ("test", 3)):
        np.save(folder / f"ninapro_{split}.npy", rng.normal(size=(n, 52, 16)).astype(np.float32))
        labels = labels_train if split == "train" and labels_train is not None else rng.integers(0, 18, n)
        np.save(folder / f"label_{split}.npy", np.asarray(labels).astype(np.int8))


def test_ninapro_npy(kit, tmp_path):
    write_ninapro(tmp_path)
    td = build(kit, "nb360-ninapro", tmp_path)
    raw = np.load(tmp_path / "ninaPro/ninapro_test.npy")
    assert torch.allclose(td.test[0]["x"][0], torch.from_numpy(raw[0].T))
    write_ninapro(tmp_path, labels_train=[0, 1, 2, 3, 4, 5, 6, 18])
    with pytest.raises(DataError, match=r"label_train.npy: labels span \[0, 18\] but the task declares 18 classes"):
        kit.datasets.get("nb360-ninapro").build({"root": str(tmp_path)})


def test_ecg_pickle(kit, tmp_path):
    records = [rng.normal(size=rng.integers(1500, 3000)) for _ in range(12)]
    with open(tmp_path / "challenge2017.pkl", "wb") as fh:
        pickle.dump({"data": records, "label": list("NAO~NAO~NAO~")}, fh)
    td = build(kit, "nb360-ecg", tmp_path, test_fraction=0.25)
    assert td.train[0]["x"].shape == (1, 1000) and td.spec.metric == "one-minus-macro-f1"


def test_satellite_object_npy(kit, tmp_path):
    for split, n in (("train", 10), ("test", 4)):
        np.save(tmp_path / f"satellite_{split}.npy", {"data": rng.normal(size=(n, 46)), "label": rng.integers(1, 25, n)}, allow_pickle=True)
    td = build(kit, "nb360-satellite", tmp_path)
    labels = np.load(tmp_path / "satellite_test.npy", allow_pickle=True).item()["label"]
    assert [int(td.test[i]["y"]) for i in range(4)] == list(labels - 1)


def test_deepsea_npz_and_nan(kit, tmp_path):
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        x = np.zeros((n, 1000, 4), dtype=np.uint8)
        x[np.arange(n)[:, None], np.arange(1000)[None], rng.integers(0, 4, (n, 1000))] = 1
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, (rng.uniform(size=(n, 36)) > 0.5).astype(np.uint8)
    np.savez(tmp_path / "deepsea_filtered.npz", **arrays)
    td = build(kit, "nb360-deepsea", tmp_path)
    assert td.train[0]["x"].shape == (4, 1000) and td.train[0]["y"].dtype == torch.float32
    arrays["y_test"] = arrays["y_test"].astype(np.float32)
    arrays["y_test"][0, 0] = np.nan
    np.savez(tmp_path / "deepsea_filtered.npz", **arrays)
    with pytest.raises(DataError, match=r"deepsea_filtered.npz \(test\): targets contain NaN or Inf"):
        kit.datasets.get("nb360-deepsea").build({"root": str(tmp_path)})


def test_unsafe_pickle_is_refused(kit, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with gzip.open(tmp_path / "s2_cifar100.gz", "wb") as fh:
        pickle.dump({"train": Evil()}, fh)
    with pytest.raises(DataError, match=r"does not load; convert the file to .npz"):
        kit.datasets.get("nb360-spherical").build({"root": str(tmp_path)})


def test_missing_and_truncated(kit, tmp_path):
    with pytest.raises(DataError, match=r"missing satellite_train.npy, satellite_test.npy in .* get them from NAS-Bench-360"):
        kit.datasets.get("nb360-satellite").build({"root": str(tmp_path)})
    np.save(tmp_path / "satellite_train.npy", {"data": np.zeros((4, 46)), "label": np.ones(4)}, allow_pickle=True)
    raw = (tmp_path / "satellite_train.npy").read_bytes()
    (tmp_path / "satellite_train.npy").write_bytes(raw[: len(raw) - 40])
    (tmp_path / "satellite_test.npy").write_bytes(raw)
    with pytest.raises(DataError, match=r"satellite_train.npy: .*truncated"):
        kit.datasets.get("nb360-satellite").build({"root": str(tmp_path)})


# PDEBench ----------------------------------------------------------------------------------------
def write_tensor(path, n=10, t=6, x=32, fields=("tensor",), dims=1):
    with h5py.File(path, "w") as f:
        shape = (n, t, x) if dims == 1 else (n, t, x, x)
        for k in fields:
            f.create_dataset(k, data=rng.normal(size=shape).astype(np.float32))
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, x))
        f.create_dataset("t-coordinate", data=np.linspace(0, 2, t + 1))


def write_groups(path, n=10, t=5, x=16, dims=1, channels=1):
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            shape = (t, x, channels) if dims == 1 else (t, x, x, channels)
            g.create_dataset("data", data=rng.normal(size=shape).astype(np.float32))
            g.create_dataset("grid/x", data=np.linspace(0, 1, x))
            g.create_dataset("grid/t", data=np.linspace(0, 1, t))


@pytest.mark.parametrize(
    "name, writer, channels, spatial",
    [
        ("pdebench-advection", lambda p: write_tensor(p, x=64), 1, (16,)),
        ("pdebench-burgers", write_tensor, 1, (32,)),
        ("pdebench-diffusion-reaction-1d", write_tensor, 1, (32,)),
        ("pdebench-cfd-1d", lambda p: write_tensor(p, fields=("density", "pressure", "Vx")), 3, (32,)),
        ("pdebench-cfd-2d", lambda p: write_tensor(p, x=16, fields=("density", "pressure", "Vx", "Vy"), dims=2), 4, (8, 8)),
        ("pdebench-diffusion-sorption", write_groups, 1, (16,)),
        ("pdebench-shallow-water", lambda p: write_groups(p, dims=2), 1, (16, 16)),
        ("pdebench-diffusion-reaction-2d", lambda p: write_groups(p, dims=2, channels=2), 2, (16, 16)),
    ],
)
def test_pdebench_formats(kit, tmp_path, name, writer, channels, spatial):
    entry = kit.datasets.get(name)
    filename = entry.make_config({"root": "x"}).file
    writer(tmp_path / filename)
    td = build(kit, name, tmp_path)
    assert td.spec.input_shape == (channels, *spatial) == td.spec.output_shape
    assert (len(td.train) + len(td.val), len(td.test)) == (9, 1)  # first 10 % is the test split
    with h5py.File(tmp_path / filename) as f:
        key = "0000" if "0000" in f else None
        if key:
            first = np.moveaxis(f[key]["data"][-1], -1, 0)
        else:
            fields = [k for k in ("tensor", "density", "pressure", "Vx", "Vy") if k in f]
            first = np.stack([f[k][0, -1] for k in fields])
    r = entry.make_config({"root": "x"}).reduced_resolution
    sl = (slice(None),) + (slice(None, None, r),) * len(spatial)
    np.testing.assert_allclose(td.test[0]["y"].numpy(), first[sl], rtol=1e-6)


def test_pdebench_darcy_and_steps(kit, tmp_path):
    with h5py.File(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5", "w") as f:
        f.create_dataset("nu", data=rng.uniform(0.1, 1, (20, 16, 16)).astype(np.float32))
        f.create_dataset("tensor", data=rng.uniform(0, 1, (20, 1, 16, 16)).astype(np.float32))
    td = build(kit, "pdebench-darcy", tmp_path)
    assert td.spec.input_shape == (1, 16, 16) and len(td.test) == 2
    write_tensor(tmp_path / "1D_Burgers_Sols_Nu1.0.hdf5")
    with pytest.raises(DataError, match="time index 9 is outside the file's 6 steps"):
        kit.datasets.get("pdebench-burgers").build({"root": str(tmp_path), "target_step": 9})
    (tmp_path / "bad.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(DataError, match="bad.hdf5: not a readable HDF5 file"):
        kit.datasets.get("pdebench-burgers").build({"root": str(tmp_path), "file": "bad.hdf5"})
    with h5py.File(tmp_path / "wrong.hdf5", "w") as f:
        f.create_dataset("u", data=np.zeros((4, 3, 8)))
    with pytest.raises(DataError, match="wrong.hdf5: no dataset 'tensor'"):
        kit.datasets.get("pdebench-burgers").build({"root": str(tmp_path), "file": "wrong.hdf5"})
