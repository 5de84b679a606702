"""Malformed inputs to the NAS-Bench-360 / PDEBench converters and loaders and to `mona-kit data`:
each gives one line (a DataError or ConfigError), never a traceback, silently wrong data or a
half-written output folder."""

import json
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io.wavfile

from mona_kit.cli import build_parser, main
from mona_kit.errors import ConfigError, DataError, MonaError

pytestmark = pytest.mark.usefixtures("isolated_cache")

rng = np.random.default_rng(0)


def data_verb(kit, *argv):
    args = build_parser(kit).parse_args(["data", *argv])
    return args._handler(args, kit)


def convert(kit, name, src, dest, *options):
    return data_verb(kit, "convert", name, *options, "--from", str(src), "--root", str(dest))


def one_line(exc_info, pattern: str) -> None:
    message = str(exc_info.value)
    assert "\n" not in message, message
    assert re.search(pattern, message), message


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (folders too), or [] when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# Sources in the published layouts ---------------------------------------------------------------------
def write_protein(base: Path, subset: str, pid: str, length: int, **override) -> None:
    feats = {
        "seq": "A" * length, "ss": rng.uniform(size=(3, length)), "pssm": rng.uniform(size=(length, 22)),
        "sa": rng.uniform(size=length), "entropy": rng.uniform(size=length), "ccmpred": rng.normal(size=(length, length)),
        "freecon": rng.normal(size=(length, length)), "potential": rng.normal(size=(length, length)),
    }
    cb = override.pop("cb", None)
    feats.update(override)
    (base / subset / "features").mkdir(parents=True, exist_ok=True)
    (base / subset / "distance").mkdir(parents=True, exist_ok=True)
    with open(base / subset / "features" / f"{pid}.pkl", "wb") as fh:
        pickle.dump(feats, fh, protocol=2)
    if cb is None:
        cb = rng.uniform(3.0, 30.0, (length, length))
        cb = (cb + cb.T) / 2
    np.save(base / subset / "distance" / f"{pid}-cb.npy", np.array([length, "A" * length, cb], dtype=object), allow_pickle=True)


def psicov_source(tmp_path: Path, **override) -> Path:
    base = tmp_path / "src" / "protein"
    write_protein(base, "deepcov", "1abc", 20, **override)
    write_protein(base, "psicov", "3ghi", 30)
    (base / "deepcov.lst").write_text("1abc\n")
    (base / "psicov.lst").write_text("3ghi\n")
    return tmp_path / "src"


def cosmic_source(tmp_path: Path) -> Path:
    src = tmp_path / "cosmic"
    for split in ("train", "test"):
        folder = src / f"npy_{split}" / "f435w" / "10182_pb" / "3"
        folder.mkdir(parents=True)
        for i in range(2):
            a = rng.normal(size=(3, 256, 256)).astype(np.float32)
            a[1] = rng.uniform(size=(256, 256)) > 0.9
            np.save(folder / f"{i + 1}_img.npy", a)
    return src


LABELS = [f"Label_{i}" for i in range(200)]


def fsd_source(tmp_path: Path, wav=None) -> Path:
    src = tmp_path / "audio"
    (src / "chunks").mkdir(parents=True)
    (src / "clips").mkdir()
    (src / "chunks" / "lbl_map.json").write_text(json.dumps({n: i for i, n in enumerate(LABELS)}))
    t = np.arange(22050) / 22050
    for i, manifest in enumerate(("tr.csv", "val.csv", "eval.csv")):
        samples = np.sin(2 * np.pi * 440 * t).astype(np.float32) if wav is None or i else wav
        scipy.io.wavfile.write(src / "clips" / f"{i}.wav", 22050, samples)
        (src / "chunks" / manifest).write_text(f'files,labels,ext\nclips/{i}.wav,"{LABELS[i]}",{i}\n')
    return src


# 1. PSICOV: features must not be infinite (NaN is filled with 0, and said); the distance map keeps NaN as "missing"
@pytest.mark.parametrize("key, bad", [("ccmpred", np.inf), ("pssm", -np.inf), ("ccmpred", 1e39)])
def test_psicov_infinite_features_are_refused(kit, tmp_path, key, bad):
    shapes = {"ccmpred": (20, 20), "sa": (20,), "pssm": (20, 22)}
    value = rng.uniform(size=shapes[key])
    value.flat[3] = bad
    src = psicov_source(tmp_path, **{key: value})
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-psicov", src, tmp_path / "root")
    one_line(e, rf"1abc.pkl: feature '{key}' contains Inf or values beyond float32")
    assert leftovers(tmp_path / "root") == []


def test_psicov_nan_features_are_stored_as_zero_and_counted(kit, tmp_path, capsys):
    value = rng.uniform(size=(20,))
    value[3] = np.nan
    convert(kit, "nb360-psicov", psicov_source(tmp_path, sa=value), tmp_path / "root")
    with np.load(tmp_path / "root/protein/psicov_train.npz") as z:
        assert np.all(np.isfinite(z["x"]))
    err = capsys.readouterr().err
    assert "nb360-psicov:" in err and "NaN feature values in 1 protein(s) were stored as 0: 1abc (" in err


def test_psicov_distance_map_nan_kept_inf_refused(kit, tmp_path):
    cb = rng.uniform(3.0, 30.0, (20, 20))
    cb[2, 7] = cb[7, 2] = np.nan  # a residue pair without coordinates: stored as 0, as before
    convert(kit, "nb360-psicov", psicov_source(tmp_path, cb=cb), tmp_path / "root")
    with np.load(tmp_path / "root/protein/psicov_train.npz") as z:
        assert np.all(np.isfinite(z["x"])) and z["y"][0, 0, 5 + 2, 5 + 7] == 0.0
    cb[2, 7] = np.inf
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-psicov", psicov_source(tmp_path / "b", cb=cb), tmp_path / "root2")
    one_line(e, r"1abc-cb.npy: the distance map contains Inf")
    assert leftovers(tmp_path / "root2") == []


# 2. FSD50K: non-finite wav samples ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fsd50k_non_finite_wav_is_refused(kit, tmp_path, bad):
    wav = np.sin(np.arange(22050) / 10).astype(np.float32)
    wav[100] = bad
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-fsd50k", fsd_source(tmp_path, wav), tmp_path / "root")
    one_line(e, r"clips/0.wav: holds NaN or Inf samples")
    assert leftovers(tmp_path / "root") == []


# 3. Cosmic masks are binary (bce) -------------------------------------------------------------------------
def save_cosmic_npz(root: Path, x: np.ndarray, y: np.ndarray) -> None:
    (root / "cosmic").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        np.savez(root / "cosmic" / f"cosmic_{split}.npz", x=x, y=y)


def test_cosmic_npz_targets_must_be_binary(kit, tmp_path):
    x = rng.normal(size=(3, 1, 128, 128)).astype(np.float32)
    save_cosmic_npz(tmp_path, x, np.full((3, 1, 128, 128), 2.0, np.float32))
    with pytest.raises(DataError) as e:
        data_verb(kit, "verify", "nb360-cosmic", "--root", str(tmp_path))
    one_line(e, r"cosmic_train.npz: 'y' holds values other than 0 and 1, but nb360-cosmic is trained with binary cross-entropy")
    save_cosmic_npz(tmp_path, x, (rng.uniform(size=(3, 1, 128, 128)) > 0.9).astype(np.float32))
    assert data_verb(kit, "verify", "nb360-cosmic", "--root", str(tmp_path)) == 0


# 4. Converter options -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, option, message",
    [
        ("nb360-cosmic", "offset=1.9", r"offset=1.9 is not a whole number"),
        ("nb360-cosmic", "offset=true", r"offset=True is not a whole number"),
        ("nb360-cosmic", "offset=-8", r"offset=-8 is below 0"),
        ("nb360-psicov", "crops=2.9", r"crops=2.9 is not a whole number"),
        ("nb360-psicov", "crops=0", r"crops=0 is below 1"),
        ("nb360-psicov", "clip=nan", r"clip='nan' is not a finite number"),
        ("nb360-psicov", "clip=.inf", r"clip=inf is not a finite number"),
        ("nb360-psicov", "seed=-1", r"seed=-1 is below 0"),
        ("nb360-fsd50k", "seed=-1", r"seed=-1 is below 0"),
        ("nb360-fsd50k", "chunks_per_clip=-2", r"chunks_per_clip=-2 is below 0"),
        ("nb360-cosmic", "filter=null", r"filter=None is not a name"),
    ],
)
def test_converter_options_are_checked(kit, tmp_path, name, option, message):
    (tmp_path / "src").mkdir()
    with pytest.raises(ConfigError) as e:
        convert(kit, name, tmp_path / "src", tmp_path / "root", option)
    one_line(e, message)
    assert not (tmp_path / "root").exists()


def test_converter_options_keep_whole_values():
    from mona_plugins.datasets.nb360_convert import check_options

    defaults = {"seed": 0, "crops": 1, "clip": 16.0, "filter": ""}
    got = check_options("x", {"seed": 2**62 + 1, "crops": 2.0, "clip": 8, "filter": "f435w"}, defaults, {"seed": 0})
    assert got == {"seed": 2**62 + 1, "crops": 2, "clip": 8.0, "filter": "f435w"}
    assert type(got["crops"]) is int and type(got["clip"]) is float


# 5. Nothing half-written ----------------------------------------------------------------------------------
def test_blocked_split_leaves_no_other_split(kit, tmp_path):
    src, dest = cosmic_source(tmp_path), tmp_path / "root"
    (dest / "cosmic" / "cosmic_test.npz").mkdir(parents=True)
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-cosmic", src, dest)
    one_line(e, r"cosmic_test.npz exists and is not a file")
    assert leftovers(dest) == ["cosmic", "cosmic/cosmic_test.npz"]


def test_stale_part_names_do_not_block(kit, tmp_path):
    src, dest = cosmic_source(tmp_path), tmp_path / "root"
    for name in (".cosmic_test.npz.x.part", ".cosmic_test.npz.y.part"):
        (dest / "cosmic" / name).mkdir(parents=True)
    convert(kit, "nb360-cosmic", src, dest)
    assert [p for p in leftovers(dest) if p.endswith(".npz")] == ["cosmic/cosmic_test.npz", "cosmic/cosmic_train.npz"]
    assert not [p for p in leftovers(dest) if p.endswith(".tmp")] and len(leftovers(dest)) == 5  # + the 2 stale folders


def test_failure_while_writing_leaves_nothing(kit, tmp_path, monkeypatch):
    from mona_plugins.datasets import nb360_convert

    write_npz, calls = nb360_convert.NpzStream.write_npz, []

    def failing_second(self, tmp):
        calls.append(self.path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write_npz(self, tmp)

    monkeypatch.setattr(nb360_convert.NpzStream, "write_npz", failing_second)
    dest = tmp_path / "new" / "root"
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-cosmic", cosmic_source(tmp_path), dest)
    one_line(e, r"cannot write .*cosmic_test.npz.: No space left on device; .*point --root at another folder\), then convert again")
    assert calls == ["cosmic_train.npz", "cosmic_test.npz"] and not (tmp_path / "new").exists()


def test_failed_write_keeps_the_previous_splits(kit, tmp_path, monkeypatch):
    from mona_plugins.datasets import nb360_convert

    src, dest = cosmic_source(tmp_path), tmp_path / "root"
    convert(kit, "nb360-cosmic", src, dest)
    before = {p: (dest / p).read_bytes() for p in leftovers(dest) if p.endswith(".npz")}

    def full_disk(self, tmp):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nb360_convert.NpzStream, "write_npz", full_disk)
    with pytest.raises(DataError, match="No space left"):
        convert(kit, "nb360-cosmic", src, dest)
    assert {p: (dest / p).read_bytes() for p in leftovers(dest) if p.endswith(".npz")} == before
    assert not [p for p in leftovers(dest) if p.endswith((".tmp", ".part"))]


def test_failed_convert_leaves_no_new_folder(kit, tmp_path):
    src = psicov_source(tmp_path)
    (src / "protein/psicov.lst").write_text("nothere\n")
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match=r"no features/nothere.pkl"):
        convert(kit, "nb360-psicov", src, tmp_path / "root" / "a" / "b")
    assert leftovers(tmp_path / "root") == []


# 6. Tracebacks turned into one-line errors ----------------------------------------------------------------
@pytest.mark.parametrize("sub", ["afile", "afile/sub"])
def test_root_under_a_file(kit, tmp_path, sub):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-cosmic", cosmic_source(tmp_path), tmp_path / sub)
    one_line(e, r"cannot create the folder .*afile is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_psicov_npz_with_text_arrays(kit, tmp_path):
    src = psicov_source(tmp_path)
    features = src / "protein/deepcov/features"
    (features / "1abc.pkl").unlink()
    arrays = {k: np.zeros(s) for k, s in (("pssm", (20, 22)), ("sa", 20), ("entropy", 20), ("ccmpred", (20, 20)), ("freecon", (20, 20)), ("potential", (20, 20)))}
    np.savez(features / "1abc.npz", ss=np.full((3, 20), "a"), **arrays)
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-psicov", src, tmp_path / "root")
    one_line(e, r"1abc.npz: 'ss' holds <U1 values, expected real numbers")
    np.savez(features / "1abc.npz", ss=np.zeros((3, 20)), **arrays)
    distance = src / "protein/deepcov/distance"
    (distance / "1abc-cb.npy").unlink()
    np.savez(distance / "1abc-cb.npz", cb_map=np.full((20, 20), "x"))
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-psicov", src, tmp_path / "root")
    one_line(e, r"1abc-cb.npz: 'cb_map' holds <U1 values")
    assert leftovers(tmp_path / "root") == []


@pytest.mark.parametrize("values", [[float(i) for i in range(200)], [str(i) for i in range(200)], ["0", *range(1, 200)]])
def test_fsd50k_label_map_values_must_be_ints(kit, tmp_path, values):
    src = fsd_source(tmp_path)
    (src / "chunks/lbl_map.json").write_text(json.dumps(dict(zip(LABELS, values))))
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-fsd50k", src, tmp_path / "root")
    one_line(e, r"lbl_map.json: expected 200 label names mapped to indices 0..199")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"files,labels,ext\nclips/0.wav\n", r"tr.csv: line 2 has fewer columns than the header"),
        (b"files,labels,ext\nclips/0.wav,\xff\xfe,0\n", r"tr.csv: not a readable UTF-8 CSV \(UnicodeDecodeError"),
    ],
)
def test_fsd50k_bad_manifest(kit, tmp_path, content, message):
    src = fsd_source(tmp_path)
    (src / "chunks/tr.csv").write_bytes(content)
    with pytest.raises(DataError) as e:
        convert(kit, "nb360-fsd50k", src, tmp_path / "root")
    one_line(e, message)


def write_darcy(root: Path, nu, tensor) -> None:
    with h5py.File(root / "2D_DarcyFlow_beta1.0_Train.hdf5", "w") as f:
        f.create_dataset("nu", data=nu)
        if tensor is None:
            f.create_group("tensor")
        else:
            f.create_dataset("tensor", data=tensor)


NU = rng.uniform(0.1, 1, (20, 16, 16)).astype(np.float32)
OUT = rng.uniform(0, 1, (20, 1, 16, 16)).astype(np.float32)


@pytest.mark.parametrize(
    "nu, tensor, message",
    [
        (NU, None, r"'tensor' is an HDF5 Group, not a dataset"),
        (np.zeros((20, 16, 16), dtype=[("a", "f4"), ("b", "f4")]), OUT, r"dataset 'nu' holds .* values, expected real numbers"),
        # 8. grids, channels and complex numbers
        (NU, rng.uniform(size=(20, 3, 16, 16)).astype(np.float32), r"targets have shape \(3, 16, 16\) per sample but inputs \(1, 16, 16\)"),
        (NU, rng.uniform(size=(20, 1, 8, 8)).astype(np.float32), r"targets have shape \(1, 8, 8\) per sample but inputs \(1, 16, 16\)"),
        (NU * (1 + 1j), OUT, r"dataset 'nu' holds complex64 values, expected real numbers"),
        (NU, OUT * (1 + 1j), r"dataset 'tensor' holds complex64 values"),
    ],
)
def test_pdebench_darcy_bad_files(kit, tmp_path, nu, tensor, message):
    write_darcy(tmp_path, nu, tensor)
    with pytest.raises(DataError) as e:
        data_verb(kit, "verify", "pdebench-darcy", "--root", str(tmp_path))
    one_line(e, rf"2D_DarcyFlow_beta1.0_Train.hdf5: {message}")


def test_text_arrays_in_nb360_files(kit, tmp_path):
    nina = tmp_path / "ninaPro"
    nina.mkdir()
    for split in ("train", "val", "test"):
        np.save(nina / f"ninapro_{split}.npy", np.full((3, 52, 16), "a"))
        np.save(nina / f"label_{split}.npy", np.zeros(3, np.int8))
    with pytest.raises(DataError) as e:
        kit.datasets.get("nb360-ninapro").build({"root": str(tmp_path)})
    one_line(e, r"ninapro_train.npy: 'EMG windows' holds <U1 values, expected real numbers")
    for split in ("train", "test"):
        np.save(tmp_path / f"satellite_{split}.npy", {"data": np.full((4, 46), "a"), "label": np.ones(4)}, allow_pickle=True)
    with pytest.raises(DataError) as e:
        kit.datasets.get("nb360-satellite").build({"root": str(tmp_path)})
    one_line(e, r"satellite_train.npy: 'data' holds <U1 values")
    save_cosmic_npz(tmp_path, np.full((1, 4), "a"), np.zeros((1, 1, 128, 128), np.float32))
    with pytest.raises(DataError) as e:
        kit.datasets.get("nb360-cosmic").build({"root": str(tmp_path)})
    one_line(e, r"cosmic_train.npz: 'x' holds <U1 values")


def test_fractional_class_labels_are_not_truncated(kit, tmp_path):
    for split, n in (("train", 10), ("test", 4)):
        labels = rng.integers(1, 25, n).astype(np.float64)
        labels[0] = 3.5
        np.save(tmp_path / f"satellite_{split}.npy", {"data": rng.normal(size=(n, 46)), "label": labels}, allow_pickle=True)
    with pytest.raises(DataError, match=r"satellite_train.npy: class labels are not whole numbers"):
        kit.datasets.get("nb360-satellite").build({"root": str(tmp_path)})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "pdebench-darcy", "--root", "~nouser-mona-kit/x"], r"pdebench-darcy: root '~nouser-mona-kit/x' starts with ~ but that home folder is unknown"),
        (["verify", "nb360-cosmic", "--root", "~nouser-mona-kit/x"], r"nb360-cosmic: root '~nouser-mona-kit/x' starts with ~"),
        (["convert", "nb360-cosmic", "--from", "~nouser-mona-kit/x", "--root", "r"], r"--from ~nouser-mona-kit/x starts with ~"),
        (["convert", "nb360-cosmic", "--from", ".", "--root", "~nouser-mona-kit/x"], r"--root ~nouser-mona-kit/x starts with ~"),
    ],
)
def test_unknown_home_folder(kit, argv, message):
    with pytest.raises(MonaError) as e:
        data_verb(kit, *argv)
    one_line(e, message)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    assert main(["data", "verify", "pdebench-darcy", "--root", "~nouser-mona-kit/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mona-kit: error: pdebench-darcy: root") and err.count("\n") == 1 and "Traceback" not in err


# 7. root= and --root together -----------------------------------------------------------------------------
def test_root_given_twice(kit, tmp_path):
    save_cosmic_npz(tmp_path, rng.normal(size=(3, 1, 128, 128)).astype(np.float32), np.zeros((3, 1, 128, 128), np.float32))
    with pytest.raises(ConfigError) as e:
        data_verb(kit, "verify", "nb360-cosmic", "root=/nonexist", "--root", str(tmp_path))
    one_line(e, r"the folder is given twice \(root=/nonexist and --root .*\); keep only --root DIR")
