"""atomic_write_many (mona_kit.api): several files written together, or none changed."""

import os
import stat
from pathlib import Path

import pytest

from mona_kit.api import MonaError, atomic_write_many


def text(value: str):
    return lambda tmp: Path(tmp).write_text(value)


def full_disk(tmp: str) -> None:
    raise OSError(28, "No space left on device")


def files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_writes_every_file_with_open_mode(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    assert atomic_write_many({a: text("1"), b: text("2")}) == [a, b]
    assert a.read_text() == "1" and b.read_text() == "2"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(a.stat().st_mode) == 0o666 & ~umask
    assert atomic_write_many({}) == []


def test_a_failed_write_changes_no_file(tmp_path):
    (tmp_path / "a").write_text("old a")
    (tmp_path / "b").write_text("old b")
    with pytest.raises(MonaError) as e:
        atomic_write_many({tmp_path / "a": text("new a"), tmp_path / "b": full_disk})
    assert "cannot write" in str(e.value) and "'b'" in str(e.value).replace(str(tmp_path) + "/", "")
    assert "No space left on device" in str(e.value) and "\n" not in str(e.value)
    assert files(tmp_path) == {"a": "old a", "b": "old b"}  # no temporary file left either


def test_a_failed_rename_names_the_files_already_replaced(tmp_path, monkeypatch):
    for name in "abc":
        (tmp_path / name).write_text(f"old {name}")
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(MonaError) as e:
        atomic_write_many({tmp_path / n: text(f"new {n}") for n in "abc"})
    message = str(e.value)
    assert f"cannot write {str(tmp_path / 'b')!r}: Input/output error" in message
    assert message.endswith(f"Already replaced before the failure: {str(tmp_path / 'a')!r}.")
    assert files(tmp_path) == {"a": "new a", "b": "old b", "c": "old c"}


def test_a_folder_in_the_way_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "a").write_text("old a")
    (tmp_path / "b").mkdir()
    with pytest.raises(MonaError, match=r"'[^']*/b' exists and is not a file; remove it"):
        atomic_write_many({tmp_path / "a": text("new a"), tmp_path / "b": text("new b")})
    assert (tmp_path / "a").read_text() == "old a" and sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_a_file_named_twice_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MonaError, match="is named twice"):
        atomic_write_many({Path("a"): text("1"), tmp_path / "a": text("2")})
    assert os.listdir(tmp_path) == []


def test_a_writers_own_errors_pass_unchanged(tmp_path):
    def bug(tmp: str) -> None:
        raise ValueError("a bug in the writer")

    def own(tmp: str) -> None:
        raise MonaError("the writer's own line mentions errno 28")

    with pytest.raises(ValueError, match="a bug"):
        atomic_write_many({tmp_path / "a": bug})
    with pytest.raises(MonaError) as e:
        atomic_write_many({tmp_path / "a": own})
    assert str(e.value) == "the writer's own line mentions errno 28"
    assert os.listdir(tmp_path) == []


def test_ctrl_c_in_a_write_leaves_no_temporary_file(tmp_path):
    def interrupted(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_many({tmp_path / "a": text("1"), tmp_path / "b": interrupted})
    assert os.listdir(tmp_path) == []
