"""Hub ids: where the Hugging Face cache is, which snapshot a ``REPO[@REVISION]`` is, whether the hub may be asked.

The environment is read on every call, not once at import as ``huggingface_hub.constants`` does, so
HF_HUB_CACHE / HF_HUB_OFFLINE set after start-up (tests, notebooks) are honoured. Nothing here
touches the network.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from mona_kit.api import MonaError

_TRUE = {"1", "on", "yes", "true"}
# Repo ids as the hub allows them: NAME or ORG/NAME, no "--" or ".." (they would escape the cache layout).
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_REVISION = re.compile(r"[\w.-]+(/[\w.-]+)*")


class HubUnavailableError(MonaError):
    """A hub id that is neither in the Hugging Face cache nor downloadable now."""


def cache_dir() -> Path:
    """The hub cache, resolved as huggingface_hub does: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def offline_setting() -> str | None:
    """The variable that asks for no hub requests, as set (``'TRANSFORMERS_OFFLINE=1'``), or None."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(name, "").strip()
        if value.lower() in _TRUE:
            return f"{name}={value}"
    return None


def offline() -> bool:
    """True when the user asked for no hub requests (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return offline_setting() is not None


def offline_cause() -> str:
    """Why no hub request is made, naming the variable the user actually set (not always HF_HUB_OFFLINE)."""
    return f"the hub is offline ({offline_setting() or 'HF_HUB_OFFLINE=1'})"


def endpoint() -> str:
    """Where huggingface_hub sends its requests (HF_ENDPOINT, else the public hub)."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def host_unresolved(url: str) -> str | None:
    """Why a download from ``url`` cannot start, found without a request: its host name does not
    resolve (no network, no DNS). huggingface_hub would retry that five times, about 25 s per file,
    before failing. None when the name resolves, when a proxy would resolve it for us (the proxies
    urllib finds: environment variables, or the system's on macOS and Windows), or when the URL is
    not one this check understands (the download then reports what it meets)."""
    from urllib.request import getproxies

    try:
        parts = urlsplit(url)
        host = parts.hostname
        proxies = getproxies()
        if not host or proxies.get(parts.scheme) or proxies.get("all"):
            return None
        socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"its host {host!r} cannot be resolved ({exc.strerror or exc}: no network?)"
    except (OSError, ValueError, UnicodeError):
        return None
    return None


def is_hub_id(repo_id: str) -> bool:
    return bool(_REPO_ID.fullmatch(repo_id)) and "--" not in repo_id and ".." not in repo_id


def split_revision(spec: str) -> tuple[str, str | None]:
    """``ORG/NAME@REVISION`` -> ``("ORG/NAME", "REVISION")``; no ``@``: revision None (the hub's ``main``)."""
    repo_id, sep, revision = spec.partition("@")
    return repo_id, (revision if sep else None)


def valid_revision(revision: str) -> bool:
    return bool(_REVISION.fullmatch(revision)) and ".." not in revision.split("/")


def cached_snapshot(repo_id: str, revision: str | None, *, repo_type: str = "models") -> Path | None:
    """The snapshot folder of ``repo_id`` at ``revision`` (a branch/tag in refs/ or a commit) in the cache, or None."""
    repo = cache_dir() / f"{repo_type}--{repo_id.replace('/', '--')}"
    revision = revision or "main"
    ref = repo / "refs" / revision
    try:
        commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else revision
    except (OSError, UnicodeDecodeError):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if valid_revision(commit) and snapshot.is_dir() else None


def unavailable(name: str, what: str, cause: str, advice: str, *, where: str | None = None) -> HubUnavailableError:
    """The one-line error for a hub id that cannot be had: which id, why, and what to pass instead."""
    where = where or f"the Hugging Face cache ({cache_dir()})"
    return HubUnavailableError(f"backbone {name!r}: {what} is not in {where} and {cause}; {advice}")
