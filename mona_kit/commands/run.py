"""``mona-kit run [CONFIG] [key=value ...]``.

With no CONFIG, runs the embedded default (``mona_kit/configs/default.yaml``) once per
method of ``--methods`` (default: mona and finetune) and prints a comparison.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ..errors import ConfigError
from ..runconfig import RunConfig, apply_overrides, check_components, read_config_file

DEFAULT_METHODS = ("mona", "finetune", "linear")


def default_config() -> dict:
    from ..yamlsafe import load_yaml_text

    text = importlib.resources.files("mona_kit").joinpath("configs/default.yaml").read_text()
    return load_yaml_text(text, what="the embedded default config")


def configure(parser) -> None:
    parser.add_argument("items", nargs="*", metavar="CONFIG|key=value", help="a YAML config file and/or overrides")
    parser.add_argument("--methods", default=None, help="comma-separated methods to run on the same config, side by side")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="continue an interrupted run")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-plots", action="store_true", help="do not draw plots after the runs")
    parser.add_argument(
        "--checkpoints", choices=("final", "all", "none"), default="final",
        help="what a finished run keeps in checkpoints/: final (default) the evaluated model's weights, all every "
        "stage's files, none nothing; an unfinished run always keeps what --resume needs",
    )


def split_items(items: list[str], verb: str = "run", list_flags: str = "--methods") -> tuple[str | None, list[str]]:
    """The one config file among ``items`` and the key=value overrides. A second word that is not an
    override is most often a list written with spaces (``--tasks a b``), so the error says both."""
    files = [i for i in items if "=" not in i]
    if len(files) > 1:
        raise ConfigError(
            f"{verb} takes one config file, got {files}; pass the others' settings as key=value "
            f"(and separate the items of {list_flags} with commas, not spaces)."
        )
    return (files[0] if files else None), [i for i in items if "=" in i]


def split_names(text: str, flag: str, what: str, example: str, where: str = "") -> list[str]:
    """A comma-separated list of names (``--methods``, ``--objectives``), every item a name: a stray
    comma would otherwise add a default or leave nothing to do."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ConfigError(f"{where}{flag} {text!r} has an empty item; list {what} separated by commas (e.g. {flag} {example}).")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # the same run (or table row) twice would only repeat, or overwrite, the first
        raise ConfigError(f"{where}{flag} {text!r} names {', '.join(twice)} twice; list each of the {what} once.")
    return names


def parse_methods(text: str, picked: bool) -> list[str]:
    """``--methods a,b`` (an empty item would add the config's own method)."""
    methods = split_names(text, "--methods", "method names", "mona,finetune")
    if picked:
        raise ConfigError("--methods and method= both choose the method; use --methods for several, method= for one.")
    return methods


def check_targets(configs: list[RunConfig], *, overwrite: bool) -> None:
    """Every run's folder is checked before the first one trains: two methods sharing one run_name,
    or a name that is taken, fail at once instead of after the first method's training."""
    from ..runs import RunDir, run_path

    named = [c for c in configs if c.run_name is not None]
    if len(configs) > 1 and named:
        raise ConfigError(
            f"run_name={named[0].run_name} names one folder, but {len(configs)} methods would run "
            f"({', '.join(c.method.name for c in configs)}); drop run_name (each run gets its own name) or run the methods one at a time."
        )
    for config in named:
        RunDir.check_target(run_path(config.output_dir, config.run_name), overwrite=overwrite)


def resume(args, kit) -> int:
    """``run --resume RUN_DIR [LR overrides]``: the run's own config, checked against its hash."""
    from ..resume_rules import check_config_hash
    from ..runner import run as run_one
    from ..runs import RunDir
    from ..summary import comparison_table, method_provenance

    for flag, given in (("--methods", args.methods), ("--overwrite", args.overwrite)):
        if given:
            raise ConfigError(f"run --resume continues one run as it was started; it takes no {flag}.")
    config_file, overrides = split_items(args.items)
    if config_file is not None:
        raise ConfigError(
            f"run --resume takes no config file ({config_file!r}): the run directory holds its config; "
            f"start a new run to use another."
        )
    config = RunConfig.from_dict(check_config_hash(RunDir.open(args.resume, to_write=True)))
    path = run_one(kit, config, resume=args.resume, overrides=overrides, progress=not args.no_progress,
                   checkpoints=args.checkpoints)
    print(comparison_table([path], method_provenance(kit)))
    return 0


def run(args, kit) -> int:
    from ..runner import run as run_one
    from ..summary import comparison_table, method_provenance

    if args.resume is not None:
        return resume(args, kit)
    path, overrides = split_items(args.items)
    base = read_config_file(path) if path else default_config()
    # The embedded default compares methods side by side unless the user picked one (method=...).
    picked = any(o.startswith("method=") for o in overrides)
    if args.methods is not None:
        methods = parse_methods(args.methods, picked)
    else:
        methods = list(DEFAULT_METHODS) if path is None and not picked else [None]
    configs = []
    for method in methods:
        extra = [f"method={method}"] if method else []
        configs.append(RunConfig.from_dict(apply_overrides(base, overrides + extra)))
    for config in configs:  # every component's name and options, before the first run trains or prints
        check_components(config, kit)
    check_targets(configs, overwrite=args.overwrite)
    paths = []
    for config in configs:
        print(f"== {config.method.name} on {config.task.name} with {config.backbone.name} (seed {config.seed})", flush=True)
        paths.append(run_one(kit, config, overwrite=args.overwrite, progress=not args.no_progress,
                             checkpoints=args.checkpoints))
    print()
    print(comparison_table(paths, method_provenance(kit)))
    for p in paths:
        print(f"run directory: {p}")
    if not args.no_plots:
        from ..plotting import plot_runs

        out = Path(paths[0]).parent / "plots"
        for png in plot_runs(paths, out):
            print(f"plot: {png}")
    return 0
