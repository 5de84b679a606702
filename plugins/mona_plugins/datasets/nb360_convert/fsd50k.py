"""FSD50K (audio.zip): 1-s wav chunks to 96-band log-mel spectrograms with 200-class multi-hot labels."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mona_kit.api import DataError

from .common import check_options, find_base, progress, resolve_listed
from .npz_writer import NpzStream, write_splits

FSD_SR = 22050
FSD_MELS = 96
FSD_FRAMES = 102
FSD_CLASSES = 200


def read_wav(path: Path) -> np.ndarray:
    """Mono float samples in [-1, 1) at FSD_SR, tiled to at least one second (as the FSD50K loaders do)."""
    import scipy.io.wavfile

    try:
        sr, data = scipy.io.wavfile.read(path)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .wav ({type(exc).__name__}: {exc}).") from exc
    if sr != FSD_SR:
        raise DataError(f"{path}: sample rate {sr} Hz, expected {FSD_SR} Hz (NAS-Bench-360's resampled chunks).")
    if data.dtype.kind == "i":  # PCM_16 / PCM_32
        x = data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind == "u":  # 8-bit PCM is offset binary
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        raise DataError(f"{path}: holds no samples.")
    if not np.all(np.isfinite(x)):  # a float wav can: it would become a NaN spectrogram
        raise DataError(f"{path}: holds NaN or Inf samples; the chunk is damaged - unzip audio.zip again.")
    if x.size < FSD_SR:
        x = np.tile(x, FSD_SR // x.size + 1)[:FSD_SR]
    return x.astype(np.float32)


class LogMel:
    """96-band log-mel features with the FSD50K paper's settings as NAS-Bench-360 computes them:
    30 ms Hann windows, 10 ms hop, 1920-point FFT, HTK mel scale, power -> dB (80 dB floor), zero mean."""

    def __init__(self, sr: int = FSD_SR, n_mels: int = FSD_MELS):
        import torch

        self.n_fft, self.win, self.hop = n_mels * 20, int(sr * 0.03), int(sr * 0.01)
        self.window = torch.hann_window(self.win, dtype=torch.float64)
        freqs = np.linspace(0, sr // 2, self.n_fft // 2 + 1)
        mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731 - HTK scale
        edges = 700.0 * (10 ** (np.linspace(mel(0.0), mel(sr / 2), n_mels + 2) / 2595.0) - 1.0)
        rising = (freqs[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
        falling = (edges[None, 2:] - freqs[:, None]) / np.diff(edges)[None, 1:]
        self.fbank = torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None))  # [freqs, mels]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        import torch

        spec = torch.stft(torch.from_numpy(audio.astype(np.float64)), self.n_fft, hop_length=self.hop, win_length=self.win,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True).abs() ** 2
        power = (self.fbank.T @ spec).numpy()  # [mels, frames]
        db = 10.0 * np.log10(np.maximum(power, 1e-10))
        db = np.maximum(db, db.max() - 80.0)
        return (db - db.mean()).astype(np.float32)


def fit_frames(spec: np.ndarray, size: int = FSD_FRAMES) -> np.ndarray:
    """Pad (with the minimum, centred) or centre-crop the time axis to ``size`` frames."""
    n = spec.shape[1]
    if n < size:
        left = (size - n) // 2
        return np.pad(spec, ((0, 0), (left, size - n - left)), constant_values=spec.min())
    start = (n - size) // 2
    return spec[:, start : start + size]


def read_label_map(path: Path) -> dict[str, int]:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({type(exc).__name__}: {exc}).") from exc
    # ints only: 3.0 or "3" would pass a sort but cannot index the label vector
    if not isinstance(m, dict) or not all(type(v) is int for v in m.values()) or sorted(m.values()) != list(range(FSD_CLASSES)):
        raise DataError(f"{path}: expected {FSD_CLASSES} label names mapped to indices 0..{FSD_CLASSES - 1}.")
    return m


def read_manifest(path: Path, labels: dict[str, int]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Chunks grouped by clip (``ext``), each with its 200-d multi-hot label."""
    if not path.is_file():
        raise DataError(f"nb360-fsd50k: missing {path}; unpack audio.zip completely.")
    clips: dict[str, list[tuple[str, np.ndarray]]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not {"files", "labels", "ext"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path}: expected columns files, labels, ext; found {reader.fieldnames}.")
            for row in reader:
                if any(row[k] is None for k in ("files", "labels", "ext")):  # DictReader fills a short row with None
                    raise DataError(f"{path}: line {reader.line_num} has fewer columns than the header; unzip audio.zip again.")
                y = np.zeros(FSD_CLASSES, dtype=np.float32)
                for name in row["labels"].split(","):
                    if name not in labels:
                        raise DataError(f"{path}: label {name!r} is not in lbl_map.json.")
                    y[labels[name]] = 1.0
                clips.setdefault(row["ext"], []).append((row["files"], y))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable UTF-8 CSV ({type(exc).__name__}: {exc}); unzip audio.zip again.") from exc
    return clips


def convert_fsd50k(src: Path, dest: Path, **options) -> list[Path]:
    """NAS-Bench-360 audio folder -> ``fsd50k/fsd50k_{train,val,test}.npz`` of log-mel chunks."""
    opts = check_options("nb360-fsd50k", options, {"seed": 0, "chunks_per_clip": 1}, {"seed": 0, "chunks_per_clip": 0})  # 0: all
    src = Path(src)
    meta = find_base(src, "lbl_map.json", ("chunks", "data/chunks", "audio/chunks"), "nb360-fsd50k", "chunks/tr.csv, val.csv, eval.csv, lbl_map.json from audio.zip")
    labels = read_label_map(meta / "lbl_map.json")
    manifests = {"fsd50k/fsd50k_train.npz": "tr.csv", "fsd50k/fsd50k_val.npz": "val.csv", "fsd50k/fsd50k_test.npz": "eval.csv"}
    clips = {rel: read_manifest(meta / name, labels) for rel, name in manifests.items()}
    roots = tuple(dict.fromkeys((meta.parent, src, meta)))
    rng = np.random.default_rng(opts["seed"])
    logmel = LogMel()

    def produce(rel: str, out: NpzStream) -> None:
        for ext in progress(sorted(clips[rel]), rel, "clips"):
            chunks = sorted(clips[rel][ext], key=lambda c: c[0])
            k = opts["chunks_per_clip"]
            if 0 < k < len(chunks):  # ORCA samples one random chunk per clip; keep a seeded choice
                chunks = [chunks[i] for i in sorted(rng.choice(len(chunks), size=k, replace=False))]
            for f, y in chunks:
                wav = resolve_listed(f, roots, str(meta / manifests[rel]))
                out.add(x=fit_frames(logmel(read_wav(wav)))[None], y=y)

    shapes = {"x": (1, FSD_MELS, FSD_FRAMES), "y": (FSD_CLASSES,)}
    return write_splits(Path(dest), {rel: shapes for rel in manifests}, produce)


