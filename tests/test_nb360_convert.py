"""`mona-kit data convert` for NAS-Bench-360 PSICOV, Cosmic and FSD50K: tiny files in the published
layouts go in, the nb360-* loaders read what comes out; bad sources give one-line errors and no files."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from mona_kit.cli import build_parser
from mona_kit.errors import ConfigError, DataError, MonaError

rng = np.random.default_rng(0)


pytestmark = pytest.mark.usefixtures("isolated_cache")


def convert(kit, name, src, dest, *options):
    args = build_parser(kit).parse_args(["data", "convert", name, *options, "--from", str(src), "--root", str(dest)])
    return args._handler(args, kit)


def npz_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".npz" in p.name)


# PSICOV: protein.zip layout ----------------------------------------------------------------------------
def write_protein(base: Path, subset: str, pid: str, length: int) -> dict:
    feats = {
        "seq": "A" * length,
        "ss": rng.uniform(size=(3, length)),
        "pssm": rng.uniform(size=(length, 22)),
        "sa": rng.uniform(size=length),
        "entropy": rng.uniform(size=length),
        "ccmpred": rng.normal(size=(length, length)),
        "freecon": rng.normal(size=(length, length)),
        "potential": rng.normal(size=(length, length)),
    }
    (base / subset / "features").mkdir(parents=True, exist_ok=True)
    (base / subset / "distance").mkdir(parents=True, exist_ok=True)
    with open(base / subset / "features" / f"{pid}.pkl", "wb") as fh:
        pickle.dump(feats, fh, protocol=2)
    cb = rng.uniform(3.0, 30.0, (length, length))
    cb = (cb + cb.T) / 2
    np.save(base / subset / "distance" / f"{pid}-cb.npy", np.array([length, "A" * length, cb], dtype=object), allow_pickle=True)
    return {"features": feats, "cb": cb}


def psicov_source(tmp_path: Path) -> tuple[Path, dict]:
    base = tmp_path / "src" / "protein"
    proteins = {"1abc": write_protein(base, "deepcov", "1abc", 20), "2def": write_protein(base, "deepcov", "2def", 125)}
    proteins["3ghi"] = write_protein(base, "psicov", "3ghi", 121)  # padded 131 -> 2x2 tiles of 128
    (base / "deepcov.lst").write_text("1abc\n2def 125\n")
    (base / "psicov.lst").write_text("3ghi\n")
    return tmp_path / "src", proteins


def test_psicov_convert_then_load(kit, tmp_path, capsys):
    src, proteins = psicov_source(tmp_path)
    dest = tmp_path / "root"
    assert convert(kit, "nb360-psicov", src, dest) == 0
    assert "wrote" in capsys.readouterr().out
    assert npz_files(dest) == ["protein/psicov_test.npz", "protein/psicov_train.npz"]
    umask = os.umask(0)
    os.umask(umask)
    for name in npz_files(dest):  # as open() would make them, readable in a shared data folder (mkstemp gives 0600)
        assert (dest / name).stat().st_mode & 0o777 == 0o666 & ~umask
    with np.load(dest / "protein/psicov_test.npz") as z:
        x, y = z["x"], z["y"]
    assert x.shape == (4, 57, 128, 128) and y.shape == (4, 1, 128, 128)
    p = proteins["3ghi"]
    # tile (0, 0): 5-residue padding, then channel 0 holds ss[0] of residue j, channel 1 of residue i
    assert np.allclose(x[0, 0, 5, 5:125], p["features"]["ss"][0][:120]) and np.allclose(x[0, 1, 5:125, 7], p["features"]["ss"][0][:120])
    assert np.allclose(x[0, 56, 5:125, 5:125], p["features"]["potential"][:120, :120])
    off = ~np.eye(120, dtype=bool)
    assert np.allclose(y[0, 0, 5:125, 5:125][off], p["cb"][:120, :120][off], atol=1e-4)  # test distances not clipped
    assert y[0, 0, 0, 0] == 100.0 and y[3, 0, -1, -1] == 100.0  # padding is far, so MAE8 ignores it
    td = kit.datasets.get("nb360-psicov").build({"root": str(dest), "val_fraction": 0.5})
    assert (len(td.train) + len(td.val), len(td.test)) == (2, 4)
    assert float(max(td.train[0]["y"].max(), td.val[0]["y"].max())) <= 16.0  # training distances clipped at 16 A


def test_psicov_bad_sources(kit, tmp_path):
    src, _ = psicov_source(tmp_path)
    dest = tmp_path / "root"
    (src / "protein/psicov.lst").unlink()
    with pytest.raises(DataError, match=r"missing .*psicov.lst; unpack protein.zip") as e:
        convert(kit, "nb360-psicov", src, dest)
    assert "\n" not in str(e.value) and npz_files(dest) == []
    (src / "protein/psicov.lst").write_text("3ghi\n")
    feats = pickle.load(open(src / "protein/deepcov/features/2def.pkl", "rb"))
    feats["pssm"] = feats["pssm"][:, :20]
    pickle.dump(feats, open(src / "protein/deepcov/features/2def.pkl", "wb"))
    with pytest.raises(DataError, match=r"'pssm' has shape \(125, 20\), expected \[125, 22\]"):
        convert(kit, "nb360-psicov", src, dest)
    assert npz_files(dest) == [] and not list(dest.rglob("*.part"))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    pickle.dump({"seq": "A", "ss": Evil()}, open(src / "protein/deepcov/features/1abc.pkl", "wb"))
    with pytest.raises(DataError, match=r"does not load.*export its arrays yourself with numpy"):
        convert(kit, "nb360-psicov", src, dest)
    assert npz_files(dest) == []


# Cosmic: deepCR npy trees --------------------------------------------------------------------------------
def write_cosmic_tree(src: Path, split: str, n: int, shape=(3, 256, 256)) -> list[Path]:
    folder = src / f"npy_{split}" / "f435w" / "10182_pb" / "3"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "sky.npy", np.ones(n))
    paths = []
    for i in range(n):
        a = rng.normal(size=shape).astype(np.float32)
        a[1] = rng.uniform(size=shape[1:]) > 0.9
        paths.append(folder / f"{i + 1}_img.npy")
        np.save(paths[-1], a)
    return paths


def test_cosmic_trees_and_orca_lists(kit, tmp_path):
    src = tmp_path / "cosmic"
    train, test = write_cosmic_tree(src, "train", 4), write_cosmic_tree(src, "test", 2)
    dest = tmp_path / "root"
    convert(kit, "nb360-cosmic", src, dest)
    td = kit.datasets.get("nb360-cosmic").build({"root": str(dest)})
    assert (len(td.train) + len(td.val), len(td.test)) == (4, 2)
    raw = np.load(test[0])
    assert np.allclose(td.test[0]["x"][0].numpy(), raw[0, 64:192, 64:192]) and np.array_equal(td.test[0]["y"][0].numpy(), raw[1, 64:192, 64:192])
    # ORCA's selection: ./cosmic/... path lists beside the trees pick a subset
    np.save(src / "train_dirs.npy", [f"./cosmic/{p.relative_to(src)}" for p in train[:3]])
    np.save(src / "test_dirs.npy", [f"./cosmic/{p.relative_to(src)}" for p in test[:1]])
    convert(kit, "nb360-cosmic", tmp_path, dest)  # --from the parent folder works too
    td = kit.datasets.get("nb360-cosmic").build({"root": str(dest)})
    assert (len(td.train) + len(td.val), len(td.test)) == (3, 1)


@pytest.mark.parametrize("terminal", [True, False])
def test_conversion_shows_progress_on_a_terminal_only(kit, tmp_path, capsys, monkeypatch, terminal):
    import sys

    src = tmp_path / "cosmic"
    write_cosmic_tree(src, "train", 3), write_cosmic_tree(src, "test", 2)
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    convert(kit, "nb360-cosmic", src, tmp_path / "root")
    err = capsys.readouterr().err
    bars = ["cosmic/cosmic_train.npz: 100%", "| 3/3 [", "cosmic/cosmic_test.npz: 100%", "| 2/2 [", " images/s"]
    assert all(bar in err for bar in bars) if terminal else err == "", err


def test_cosmic_bad_sources(kit, tmp_path):
    dest = tmp_path / "root"
    with pytest.raises(DataError, match=r"no train_dirs.npy or npy_train/"):
        convert(kit, "nb360-cosmic", tmp_path, dest)
    src = tmp_path / "cosmic"
    write_cosmic_tree(src, "train", 2)
    write_cosmic_tree(src, "test", 1, shape=(3, 100, 100))
    with pytest.raises(DataError, match=r"shape \(3, 100, 100\), expected \[2 or 3, H, W\]"):
        convert(kit, "nb360-cosmic", src, dest)
    assert npz_files(dest) == [] and not list(dest.rglob("*.part"))


# FSD50K: audio.zip layout -----------------------------------------------------------------------------
LABELS = [f"Label_{i}" for i in range(200)]


def fsd_source(tmp_path: Path, sample_rate: int = 22050) -> Path:
    src = tmp_path / "audio"
    meta = src / "chunks"
    meta.mkdir(parents=True)
    (meta / "lbl_map.json").write_text(json.dumps({n: i for i, n in enumerate(LABELS)}))
    t = np.arange(22050) / 22050
    clip = 0
    for manifest, folder, n_clips in (("tr.csv", "dev_chunks", 3), ("val.csv", "dev_chunks", 1), ("eval.csv", "eval_chunks", 2)):
        (src / folder).mkdir(exist_ok=True)
        rows = ["files,labels,ext"]
        for _ in range(n_clips):
            clip += 1
            for part in range(2):
                wav = src / folder / f"{clip}_{part:04d}.wav"
                scipy.io.wavfile.write(wav, sample_rate, (8000 * np.sin(2 * np.pi * 440 * (clip + 1) * t)).astype(np.int16))
                # manifests carry absolute paths from the machine that made them
                rows.append(f'/home/someone/fsd50k/{folder}/{wav.name},"{LABELS[clip]},{LABELS[199]}",{clip}')
        (meta / manifest).write_text("\n".join(rows) + "\n")
    return src


def test_fsd50k_convert_then_load(kit, tmp_path):
    dest = tmp_path / "root"
    convert(kit, "nb360-fsd50k", fsd_source(tmp_path), dest, "seed=3")
    td = kit.datasets.get("nb360-fsd50k").build({"root": str(dest)})
    assert (len(td.train), len(td.val), len(td.test)) == (3, 1, 2)  # one chunk per clip, published val kept
    x, y = td.test[0]["x"], td.test[0]["y"]
    assert x.shape == (1, 96, 102) and abs(float(x[:, :, :101].mean())) < 1e-3
    assert y.shape == (200,) and y.sum() == 2 and y[5] == 1 and y[199] == 1  # clip 5 is the first eval clip
    convert(kit, "nb360-fsd50k", tmp_path / "audio", dest, "chunks_per_clip=0")
    assert len(kit.datasets.get("nb360-fsd50k").build({"root": str(dest)}).test) == 4


def test_log_mel_puts_a_tone_in_its_band():
    from mona_plugins.datasets.nb360_convert import LogMel

    t = np.arange(22050) / 22050
    spec = LogMel()(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert spec.shape == (96, 101)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    centres = 700 * (10 ** (np.linspace(0, mel(11025), 98)[1:-1] / 2595) - 1)
    assert abs(int(spec[:, 50].argmax()) - int(np.abs(centres - 1000).argmin())) <= 1


def test_fsd50k_bad_sources(kit, tmp_path):
    dest = tmp_path / "root"
    src = fsd_source(tmp_path, sample_rate=16000)
    with pytest.raises(DataError, match=r"sample rate 16000 Hz, expected 22050 Hz"):
        convert(kit, "nb360-fsd50k", src, dest)
    assert npz_files(dest) == [] and not list(dest.rglob("*.part"))
    (src / "chunks/eval.csv").unlink()
    with pytest.raises(DataError, match=r"missing .*eval.csv; unpack audio.zip"):
        convert(kit, "nb360-fsd50k", src, dest)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['window'\]"):
        convert(kit, "nb360-fsd50k", src, dest, "window=3")


# The command and the loaders' messages -------------------------------------------------------------------
def test_convert_refuses_other_names_and_bad_folders(kit, tmp_path):
    with pytest.raises(ConfigError, match=r"'nb360-cifar100' has no converter; .* works for: nb360-cosmic, nb360-fsd50k, nb360-psicov"):
        convert(kit, "nb360-cifar100", tmp_path, tmp_path / "root")
    with pytest.raises(MonaError, match=r"did you mean|unknown|no dataset"):
        convert(kit, "nb360-psicovv", tmp_path, tmp_path / "root")
    with pytest.raises(DataError, match=r"--from .* is not a folder"):
        convert(kit, "nb360-psicov", tmp_path / "nowhere", tmp_path / "root")


@pytest.mark.parametrize("name", ["nb360-psicov", "nb360-cosmic", "nb360-fsd50k"])
def test_missing_npz_points_to_convert(kit, tmp_path, name):
    with pytest.raises(DataError, match=rf"run `mona-kit data convert {name} --from .* --root {tmp_path}`") as e:
        kit.datasets.get(name).build({"root": str(tmp_path)})
    assert "\n" not in str(e.value)


def test_docs_list_every_dataset(kit):
    text = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text()
    missing = [e.name for e in kit.datasets.list() if f"`{e.name}`" not in text]
    assert not missing, f"docs/datasets.md lacks {missing}; regenerate its table"
