"""Loaders (torch and torchdata.nodes), the tensor cache, and the data CLI."""

import json

import pytest
import torch

from mona_kit.cli import main
from mona_kit.data import (
    TensorDictDataset,
    cached_tensors,
    carve_validation,
    validation_size,
    make_loader,
    strings_to_tensors,
    tensors_to_strings,
)
from mona_kit.errors import DataError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MONA_KIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def toy(n=23):
    return TensorDictDataset({"x": torch.arange(n, dtype=torch.float32).view(n, 1), "y": torch.arange(n)})


def order(loader):
    return torch.cat([b["y"] for b in loader]).tolist()


def test_torch_and_nodes_loaders_agree_and_are_seeded():
    ds = toy()
    a = order(make_loader(ds, batch_size=5, shuffle=True, seed=3, kind="torch"))
    b = order(make_loader(ds, batch_size=5, shuffle=True, seed=3, kind="nodes"))
    c = order(make_loader(ds, batch_size=5, shuffle=True, seed=4, kind="torch"))
    assert a == b and sorted(a) == list(range(23)) and a != c
    assert order(make_loader(ds, batch_size=5, shuffle=False, kind="nodes", num_workers=2)) == list(range(23))


def test_nodes_loader_resumes_mid_epoch():
    ds = toy()
    loader = make_loader(ds, batch_size=4, shuffle=True, seed=0, kind="nodes")
    it = iter(loader)
    seen = [next(it)["y"].tolist() for _ in range(2)]
    state = loader.state_dict()
    rest = [b["y"].tolist() for b in it]
    resumed = make_loader(ds, batch_size=4, shuffle=True, seed=0, kind="nodes")
    resumed.load_state_dict(state)
    assert [b["y"].tolist() for b in resumed] == rest
    assert sorted(sum(seen + rest, [])) == list(range(23))


def test_text_samples_collate_to_lists():
    ds = TensorDictDataset({"y": torch.tensor([0, 1, 2])}, {"text": ["a", "bé", "c"]})
    batch = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    assert batch["text"] == ["a", "bé", "c"] and batch["y"].tolist() == [0, 1, 2]
    t = strings_to_tensors(["a", "bé", ""])
    assert tensors_to_strings(t["text_bytes"], t["text_offsets"]) == ["a", "bé", ""]


def test_cached_tensors_builds_once_and_not_on_error(cache):
    calls = []

    def build():
        calls.append(1)
        return {"a": torch.ones(3)}

    assert torch.equal(cached_tensors("k", build)["a"], torch.ones(3))
    assert torch.equal(cached_tensors("k", build)["a"], torch.ones(3))
    assert len(calls) == 1
    assert not list(cache.rglob("*.tmp"))

    def bad():
        raise DataError("x.csv: broken")

    with pytest.raises(DataError):
        cached_tensors("bad", bad)
    assert not (cache / "tensors" / "bad.pt").exists()
    (cache / "tensors" / "k.pt").write_bytes(b"garbage")  # a corrupt entry is rebuilt
    assert torch.equal(cached_tensors("k", build)["a"], torch.ones(3)) and len(calls) == 2


def test_carve_validation_partitions():
    tr, va = carve_validation(50, 0.2, seed=0)
    assert len(va) == 10 and sorted(torch.cat([tr, va]).tolist()) == list(range(50))
    assert torch.equal(va, carve_validation(50, 0.2, seed=0)[1])


def test_validation_is_big_enough_to_select_on():
    # At least 100 samples or 20 %, whichever is larger, while train keeps at least as many.
    assert validation_size(1000, 0.2, 100) == (200, True)
    assert validation_size(300, 0.2, 100) == (100, True)
    # Too small for that (a UCR set): 20 %, and the caller is told not to select on it.
    assert validation_size(50, 0.2, 100) == (10, False)
    assert validation_size(50, 0.2, 0) == (10, True)


def test_small_sets_train_for_a_fixed_budget():
    from mona_kit.kit import load_kit

    kit = load_kit()
    assert kit.datasets.get("gunpoint").build({}).selection == "fixed-budget"
    assert kit.datasets.get("burgers-1d").build({}).selection == "validation"


def test_cli_info_matches_the_splits(capsys):
    assert main(["data", "info", "burgers-1d", "max_train=100", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    sizes = {k: v["size"] for k, v in info["splits"].items()}
    assert sizes == {"train": 100, "val": 200, "test": 200}  # 20 % of burgers' 1,000 (cap applies after)
    assert info["splits"]["train"]["sample"]["x"] == [1, 16]
    assert main(["data", "info", "gunpoint"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "licence" in out and "     40 samples" in out
    assert main(["data", "list", "nb360-*"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 10


def test_cli_verify_reports_missing_files_in_one_line(tmp_path, capsys):
    assert main(["data", "verify", "pdebench-advection", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "1D_Advection_Sols_beta0.4.hdf5" in err and "DaRUS" in err


def test_cli_data_says_when_root_is_needed_and_when_not(capsys):
    assert main(["data", "info", "nb360-ecg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mona-kit: error: dataset 'nb360-ecg' reads its files from a folder; pass --root DIR (docs/datasets.md says where to get them)."
    assert main(["data", "verify", "gunpoint"]) == 0  # shipped data: verifiable without --root
    assert "gunpoint: ok (train 40, val 10, test 150)" in capsys.readouterr().out
