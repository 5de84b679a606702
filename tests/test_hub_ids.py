"""Hub ids (``hf:ORG/NAME[@REVISION]``, ``timm:ARCH`` pretrained) from a local Hugging Face cache, never the network.

Every test that builds a hub id sets HF_HUB_OFFLINE=1 and HF_HUB_CACHE to a cache laid out as
huggingface_hub lays it out (blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash>, refs/<branch>).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from mona_kit import cli
from mona_kit.errors import MonaError
from mona_kit.kit import load_kit

REPO = "sentence-transformers/all-MiniLM-L6-v2"
MAIN, STABLE = "a" * 40, "b" * 40  # commits: main has the 6-layer model, refs/stable a 3-layer config


@pytest.fixture(scope="module")
def kit():
    return load_kit(builtins=["mona_plugins.backbones", "mona_plugins.embedders"], entry_points=False)


def _blob_name(data: bytes, lfs: bool) -> str:
    """The blob's name as the hub gives it: sha256 for LFS files (weights), the git blob sha1 otherwise."""
    if lfs:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lay_out(cache: Path, repo_id: str, commit: str, files: dict[str, bytes | Path], refs: tuple[str, ...] = ("main",)) -> Path:
    """Add one snapshot of ``repo_id`` to a hub-layout cache; returns the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for rel, content in files.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        blob = repo / "blobs" / _blob_name(data, lfs=rel.endswith((".safetensors", ".bin")))
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # the hub writes the bare hash, no newline
    return repo / "snapshots" / commit


def _minilm_files() -> dict[str, Path]:
    from mona_plugins.backbones.hf import minilm_folder

    folder = minilm_folder()
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("hf") / "hub"
    files = _minilm_files()
    lay_out(cache, REPO, MAIN, files)
    config = json.loads(files["config.json"].read_text())
    lay_out(cache, REPO, STABLE, {**files, "config.json": json.dumps({**config, "num_hidden_layers": 3}).encode()}, refs=("stable",))
    evil = json.dumps({**config, "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}).encode()
    lay_out(cache, "evil/bert", MAIN, {**files, "config.json": evil, "modeling_evil.py": b"open('PWNED', 'w')\n"})
    return cache


@pytest.fixture
def offline(hub_cache, tmp_path, monkeypatch) -> Path:
    """Offline, with the hub-layout cache; the hub's own downloader would fail the test if it were called."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))

    def no_network(*args, **kwargs):
        raise AssertionError(f"the hub was asked for {args} while offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr("timm.models._hub.hf_hub_download", no_network)  # timm's own bound copy
    return hub_cache


def embed(body, texts: list[str]) -> torch.Tensor:
    f_s = body.source_embedder()
    prepared = f_s.prepare([{"text": t, "y": torch.tensor(0)} for t in texts], max_tokens=16)
    batch = torch.utils.data.default_collate([prepared[i] for i in range(len(texts))])
    with torch.no_grad():
        return body(*f_s(batch))


def test_hub_id_resolves_from_the_cache_and_embeds_like_minilm_l6(kit, offline):
    hub = kit.backbones.get(f"hf:{REPO}")
    assert "Hugging Face cache" in hub.summary
    body = hub.build({"max_tokens": 16})
    named = kit.backbones.get("minilm-l6").build({"max_tokens": 16})
    texts = ["A man is playing a guitar.", "Stocks fell sharply on Monday."]
    assert torch.equal(embed(body, texts), embed(named, texts))
    assert body.state_dict().keys() == named.state_dict().keys()


def test_revision_by_commit_and_by_branch(kit, offline):
    def layers(spec: str) -> int:
        return kit.backbones.get(f"hf:{spec}").build({"max_tokens": 16}).model.config.num_hidden_layers

    assert layers(f"{REPO}@{MAIN}") == 6 and layers(f"{REPO}@main") == 6
    assert layers(f"{REPO}@stable") == 3 and layers(f"{REPO}@{STABLE}") == 3
    with pytest.raises(MonaError, match=rf"'{REPO}@v9' is not in the Hugging Face cache"):
        kit.backbones.get(f"hf:{REPO}@v9").build({})


def test_id_not_in_the_cache_offline_is_one_line_from_the_cli(offline, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    argv = ["run", "backbone=hf:acme/no-such-model", "task=gunpoint", "method=finetune", "train.epochs=1",
            "--no-progress", "--no-plots", f"output_dir={tmp_path}/runs", "run_name=r"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "backbone 'hf:acme/no-such-model': 'acme/no-such-model' is not in the Hugging Face cache" in err
    assert str(offline) in err and "the hub is offline (HF_HUB_OFFLINE=1)" in err
    assert "backbone=hf:/path/to/folder" in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_auto_map_snapshot_is_refused(kit, offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MonaError, match=r"config\.json' points at custom code in the folder \(auto_map\)"):
        kit.backbones.get("hf:evil/bert").build({})
    assert not (tmp_path / "PWNED").exists()


def test_local_folders_keep_working_and_win_over_hub_ids(kit, offline, tmp_path, monkeypatch):
    from mona_plugins.backbones.hf import minilm_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "mini").symlink_to(minilm_folder())
    for spec in (str(minilm_folder()), "./acme/mini", "acme/mini"):  # the last would be an ORG/NAME id
        entry = kit.backbones.get(f"hf:{spec}")
        assert entry.summary == f"transformers encoder from {spec}"
        assert entry.build({"max_tokens": 16}).width == 384


@pytest.fixture
def resolvable(monkeypatch):
    """The hub's host name resolves (this machine has no DNS for it): the downloader itself is replaced."""
    monkeypatch.setattr("mona_plugins.backbones._hub.host_unresolved", lambda url: None)


def test_online_download_checks_custom_code_before_fetching_weights(kit, hub_cache, tmp_path, monkeypatch, resolvable):
    """The online path with the downloader replaced (no network): metadata first, then the weights."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    asked = []

    def fake_download(repo_id, *, revision, cache_dir, allow_patterns):
        asked.append((repo_id, tuple(allow_patterns)))
        assert Path(cache_dir) == tmp_path / "empty"
        return str(hub_cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / MAIN)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert kit.backbones.get(f"hf:{REPO}").build({"max_tokens": 16}).width == 384
    assert [a[0] for a in asked] == [REPO, REPO] and "*.json" in asked[0][1] and "*.safetensors" in asked[1][1]
    asked.clear()
    with pytest.raises(MonaError, match=r"auto_map"):
        kit.backbones.get("hf:evil/bert").build({})
    assert len(asked) == 1  # refused before any weights were fetched

    def unreachable(*args, **kwargs):
        raise ConnectionError("Could not resolve host: huggingface.co\nmore")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(MonaError) as info:
        kit.backbones.get("hf:acme/x").build({})
    msg = str(info.value)
    assert "\n" not in msg and "downloading it failed (ConnectionError: Could not resolve host" in msg
    assert "hf:/path/to/folder" in msg


def test_loading_a_model_leaves_the_process_online(kit, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    kit.backbones.get("minilm-l6").build({"max_tokens": 16})  # a local folder: local_files_only, no requests
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ


# timm -------------------------------------------------------------------------------------------------
def test_timm_arch_without_weights_still_works(kit, offline):
    from mona_kit.testing import check_backbone

    check_backbone(kit.backbones.get("timm:test_resnet").build({"image_size": 64, "pretrained": False}))


def test_timm_pretrained_offline_and_not_cached_is_one_line(kit, offline):
    with pytest.raises(MonaError) as info:
        kit.backbones.get("timm:test_resnet").build({"image_size": 64})
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("backbone 'timm:test_resnet': 'timm/test_resnet.r160_in1k'")
    assert "not in the Hugging Face cache" in msg and "the hub is offline" in msg
    assert "timm:test_resnet:/path/to/weights.safetensors" in msg and "backbone.pretrained=false" in msg


def test_timm_pretrained_from_the_cache(kit, offline, tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    reference = timm.create_model("test_resnet", pretrained=False)
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(weights))
    repo = lay_out(offline, "timm/test_resnet.r160_in1k", "c" * 40, {"model.safetensors": weights})
    try:
        body = kit.backbones.get("timm:test_resnet").build({"image_size": 64})
        ref = reference.state_dict()
        assert torch.equal(body._side.full.fc.weight, ref["fc.weight"])
        assert torch.equal(body._side.stem[0][0].weight, ref["conv1.0.weight"])
    finally:
        shutil.rmtree(repo.parent.parent)  # the cache is shared by the module



def test_timm_pretrained_online_failure_is_one_line(kit, tmp_path, monkeypatch, resolvable):
    """Online with timm's downloader replaced (no network): a failed download is one line, with the way out."""
    seen = []

    def unreachable(*args, **kwargs):
        seen.append(kwargs.get("cache_dir"))
        raise ConnectionError("Could not resolve host: huggingface.co")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr("timm.models._hub.hf_hub_download", unreachable)
    with pytest.raises(MonaError) as info:
        kit.backbones.get("timm:test_resnet").build({"image_size": 64})
    msg = str(info.value)
    assert "\n" not in msg and "loading them failed (ConnectionError: Could not resolve host" in msg
    assert "backbone.pretrained=false" in msg and seen and seen[0] == str(tmp_path / "empty")


@pytest.mark.parametrize("spec", ["hf:acme/bert", "timm:test_resnet"])
def test_an_unresolvable_hub_fails_at_once_without_asking_the_downloader(spec, kit, tmp_path, monkeypatch):
    """No DNS (a machine without network): one line at once, instead of huggingface_hub's five retries."""
    import socket

    import huggingface_hub

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def downloader(*args, **kwargs):
        raise AssertionError("the downloader was asked although the hub's name does not resolve")

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", downloader)
    monkeypatch.setattr("timm.models._hub.hf_hub_download", downloader)
    with pytest.raises(MonaError) as info:
        kit.backbones.get(spec).build({"image_size": 64} if spec.startswith("timm") else {})
    msg = str(info.value)
    assert "\n" not in msg and "its host 'hub.example.org' cannot be resolved (Name or service not known" in msg
    assert "pretrained=false" in msg or "hf:/path/to/folder" in msg


def test_behind_a_proxy_the_name_is_not_checked_here(monkeypatch):
    """A proxy resolves names itself: a local DNS failure must not refuse a download that would work."""
    import socket

    from mona_plugins.backbones import _hub

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert "cannot be resolved" in (_hub.host_unresolved("https://huggingface.co") or "")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    assert _hub.host_unresolved("https://huggingface.co") is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("http_proxy", "http://proxy.local:3128")  # an http:// mirror behind an http proxy
    assert _hub.host_unresolved("http://hub-mirror.corp") is None
    assert "cannot be resolved" in (_hub.host_unresolved("https://huggingface.co") or "")


@pytest.mark.parametrize("url", ["http://[::1", "https://" + "a" * 64 + ".com", "https://hub:port", "file:///tmp/x"])
def test_urls_the_check_does_not_understand_are_left_to_the_download(url):
    from mona_plugins.backbones import _hub

    assert _hub.host_unresolved(url) is None
