"""``mona-kit plot RUN_DIR... [--out DIR]``: learning and knowledge-reuse curves as PNGs."""

from __future__ import annotations

from pathlib import Path

from ..runs import RunDir


def configure(parser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first run's parent>/plots)")


def run(args, kit) -> int:
    from ..plotting import check_out_dir, plot_runs
    from ..summary import read_results

    runs = [Path(path).expanduser() for path in args.runs]  # '~' once, for the runs and --out alike
    for path in runs:
        RunDir.open(path)  # a clear error for a folder that is not a run
        read_results(path)  # and for a damaged results.json, before any file is written
    out = args.out.expanduser() if args.out else runs[0].parent / "plots"
    check_out_dir(out)
    for png in plot_runs(runs, out):
        print(png)
    return 0
