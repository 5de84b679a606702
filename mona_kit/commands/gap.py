"""``mona-kit gap [CONFIG] [key=value ...]``: the modality gap before any training.

Embeds target data with the (untrained) target embedder and source proxy data with the
body's own input embedding, and measures registered distances between the two - in the
token space the body receives, and after the pretrained body. Compare bodies or embedders
by running it once per choice.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..runconfig import RunConfig, apply_overrides, read_config_file
from .run import default_config, split_items, split_names


def configure(parser) -> None:
    parser.add_argument("items", nargs="*", metavar="CONFIG|key=value", help="a run config and/or overrides")
    parser.add_argument("--objectives", default="otdd,mmd", help="comma-separated distance objectives")
    parser.add_argument("--samples", type=int, default=256, help="target and source samples used")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args, kit) -> int:
    from ..diagnostics import modality_gap
    from ..engine import Session

    if args.samples < 1:  # checked before any model is built
        raise ConfigError(f"gap: --samples must be >= 1 (samples per side), got {args.samples}; e.g. --samples 256.")
    objectives = split_names(args.objectives, "--objectives", "distances", "otdd,mmd", where="gap: ")
    for name in objectives:  # fail on a typo before embedding anything
        kit.objectives.get(name)
    path, overrides = split_items(args.items, "gap", "--objectives")
    if path and not Path(path).is_file() and not Path(path).is_dir():  # read_config_file's own line names 'mona-kit run'
        raise ConfigError(
            f"config file {str(Path(path))!r} does not exist; check the path (or run 'mona-kit gap' with no file for the default)."
        )
    base = read_config_file(path) if path else default_config()
    config = RunConfig.from_dict(apply_overrides(base, overrides))
    session = Session(kit, config, progress=False)
    model = session.build_model()
    out = {"task": session.spec.name, "backbone": session.backbone_entry.name,
           "embedder": session.resolved_name("embedder"), "source": session.resolved_name("source")}
    for where, through_body in (("tokens", False), ("body", True)):
        xt, targets = session.target_features(model, "train", args.samples, through_body=through_body)
        yt = session.class_labels(targets)
        xs, ys = session.source_features(model.body if through_body else None, "train", args.samples)
        out[where] = modality_gap(xs, ys, xt, yt, objectives=objectives, kit=kit)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"modality gap: {out['task']} (embedder {out['embedder']}) vs {out['source']} through {out['backbone']}")
    print(f"{'objective':<16}{'token space':>14}{'after body':>14}")
    for name in objectives:
        print(f"{name:<16}{out['tokens'][name]:>14.4g}{out['body'][name]:>14.4g}")
    return 0
