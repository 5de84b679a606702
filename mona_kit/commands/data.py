"""``mona-kit data list | info NAME | verify NAME | convert NAME``: what datasets exist, what they
hold, whether a folder of files is readable, and turning published files into a loadable form."""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..errors import ConfigError


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="data_verb", metavar="SUBVERB")
    p = sub.add_parser("list", help="registered datasets, with whether they need user files", allow_abbrev=False)
    p.add_argument("pattern", nargs="?", default="*", help="glob on names, e.g. 'nb360-*'")
    for verb, text in (("info", "load a dataset and print its splits, shapes, licence and files"),
                       ("verify", "load every split from --root and run the dataset contract checks")):
        p = sub.add_parser(verb, help=text, description=text, allow_abbrev=False)
        p.add_argument("name", help="a registered dataset")
        p.add_argument("options", nargs="*", metavar="KEY=VALUE", help="dataset options, e.g. max_train=100")
        p.add_argument("--root", help="folder with the dataset's files (datasets marked 'needs root' in `data list`)")
        if verb == "info":
            p.add_argument("--json", action="store_true", help="machine-readable output")
    text = "convert a dataset's published files (--from) into the files its loader reads (--root)"
    p = sub.add_parser("convert", help=text, description=text + "; only for datasets that register a converter (see `data list`).",
                       allow_abbrev=False)
    p.add_argument("name", help="a dataset with a converter, e.g. nb360-psicov, nb360-cosmic, nb360-fsd50k")
    p.add_argument("options", nargs="*", metavar="KEY=VALUE", help="converter options, e.g. seed=1")
    p.add_argument("--from", dest="source", required=True, help="folder with the published (unpacked) files")
    p.add_argument("--root", required=True, help="folder to write into; pass the same --root to the loader")


def _options(args, entry=None) -> dict[str, Any]:
    """KEY=VALUE options, and ``--root`` checked against ``entry`` (a dataset that ships its data
    takes none; one that reads files needs one) when given."""
    from ..runconfig import parse_overrides

    opts: dict[str, Any] = {}
    for path, value in parse_overrides(args.options, example="max_train=100"):
        if len(path) != 1:
            raise ConfigError(f"dataset option {'.'.join(path)!r} does not nest; use KEY=VALUE.")
        opts[path[0]] = value
    if entry is None:
        return opts
    root = _root_field(entry)
    if args.root is not None:
        if root is None:
            raise ConfigError(f"dataset {entry.name!r} ships its data and reads no files; drop --root.")
        if "root" in opts:  # never pick one silently
            raise ConfigError(f"the folder is given twice (root={opts['root']} and --root {args.root}); keep only --root DIR.")
        opts["root"] = args.root
    elif root is not None and root.default is attrs.NOTHING and "root" not in opts:
        raise ConfigError(f"dataset {entry.name!r} reads its files from a folder; pass --root DIR (docs/datasets.md says where to get them).")
    return opts


def _folder(value: str, flag: str):
    """``value`` as a Path with ``~`` expanded; ``~nouser`` is a one-line error, not pathlib's RuntimeError."""
    from pathlib import Path

    try:
        return Path(value).expanduser()
    except RuntimeError as exc:
        raise ConfigError(f"{flag} {value} starts with ~ but that home folder is unknown here; give the folder's full path.") from exc


def convert(args, kit) -> int:
    """Run the converter a dataset entry registers (meta ``convert``) from --from into --root."""
    entry = kit.datasets.get(args.name)
    converter = entry.meta.get("convert")
    if not callable(converter):
        have = [e.name for e in kit.datasets.list() if callable(e.meta.get("convert"))]
        raise ConfigError(f"dataset {args.name!r} has no converter; `mona-kit data convert` works for: {', '.join(have) or 'none'}.")
    source, root = _folder(args.source, "--from"), _folder(args.root, "--root")
    if not source.is_dir():
        from ..errors import DataError

        raise DataError(f"{args.name}: --from {args.source} is not a folder; point it at the unpacked published files.")
    written = converter(source, root, **_options(args))
    for path in written:
        print(f"wrote {path}")
    print(f"{args.name}: converted; check it with: mona-kit data verify {args.name} --root {args.root}")
    return 0


def describe(task_data) -> dict[str, Any]:
    """Plain-data summary of a TaskData: spec and, per split, size and sample shapes."""
    spec = attrs.asdict(task_data.spec)
    splits = {}
    for name, ds in task_data.splits().items():
        sample = ds[0]
        splits[name] = {
            "size": len(ds),
            "sample": {k: (list(v.shape) if hasattr(v, "shape") else type(v).__name__) for k, v in sample.items()},
            "dtype": {k: str(v.dtype).replace("torch.", "") for k, v in sample.items() if hasattr(v, "dtype")},
        }
    return {"spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()}, "splits": splits}


def _root_field(entry):
    """The dataset config's ``root`` field, or None when it reads no files."""
    return None if entry.config is None else {f.name: f for f in attrs.fields(entry.config)}.get("root")


def is_offline(entry) -> bool:
    """Meta ``offline=True/False`` when the plugin says; else a dataset with no ``root`` option needs no files."""
    if "offline" in entry.meta:
        return bool(entry.meta["offline"])
    return _root_field(entry) is None


def check_samples(task_data, name: str) -> None:
    """``data info``'s verdict: the first, middle and last sample of every split agree with the spec (else exit 2)."""
    from ..errors import DataError
    from ..testing.data import check_samples as contract

    try:
        contract(task_data)
    except AssertionError as exc:
        raise DataError(f"{name}: {exc}; the samples contradict the dataset's spec - fix the plugin's factory.") from exc


def run(args, kit) -> int:
    verb = getattr(args, "data_verb", None)
    if verb in (None, "list"):
        from .list import no_match

        pattern = getattr(args, "pattern", "*")
        entries = kit.datasets.list(pattern)
        for e in entries:
            where = "offline" if is_offline(e) else "needs root"
            print(f"{e.name:34s} {e.meta.get('modality', ''):16s} {where:11s} {e.summary}")
        if not entries:
            print(no_match("datasets", pattern))
        return 0
    if verb == "convert":
        return convert(args, kit)
    entry = kit.datasets.get(args.name)
    task_data = entry.build(_options(args, entry))
    info = describe(task_data)
    if verb == "verify":
        from ..testing.data import check_task_data

        try:
            check_task_data(task_data, kit=kit)
        except AssertionError as exc:
            from ..errors import DataError

            raise DataError(f"{args.name} from {args.root or 'its shipped files'}: {exc}") from exc
        sizes = ", ".join(f"{k} {v['size']}" for k, v in info["splits"].items())
        print(f"{args.name}: ok ({sizes}) from {task_data.spec.source}")
        return 0
    if args.json:
        print(json.dumps({"name": entry.name, "provider": str(entry.provider), **info}, indent=2))
        check_samples(task_data, entry.name)
        return 0
    spec = info["spec"]
    print(f"{entry.name}  ({spec['task_type']}, {spec['modality']})")
    print(f"  input {tuple(spec['input_shape'])} -> output {tuple(spec['output_shape'])}; loss {spec['loss']}, metric {spec['metric']} "
          f"({'higher' if spec['higher_is_better'] else 'lower'} is better)")
    for name, s in info["splits"].items():
        shapes = ", ".join(f"{k} {tuple(v) if isinstance(v, list) else v} {s['dtype'].get(k, '')}".rstrip() for k, v in s["sample"].items())
        print(f"  {name:8s} {s['size']:7d} samples   {shapes}")
    print(f"  licence: {spec['license']}")
    print(f"  citation: {spec['citation']}")
    print(f"  files: {spec['source']}")
    check_samples(task_data, entry.name)
    return 0
