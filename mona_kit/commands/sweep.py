"""``mona-kit sweep PROFILE [key=value ...]``: methods x tasks x seeds, resumable, then
``table.md``, ``results.csv``, ``errors.png`` and ``knowledge-reuse.png`` in the profile's output.
``--report-only`` redraws them from finished cells; ``--status`` says which cells are finished,
running, started or not started and estimates the time left. ``--launcher local|submitit`` and ``--jobs N``
choose where cells run and how many at once (mona_kit/launchers.py).

Every cell's config is checked, and every started cell's record read, before the first cell
trains. Exit status: 0 when every cell finished (or runs in another process), 1 when any cell
failed (the report is still written from the finished ones), 2 for bad input.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError


def configure(parser) -> None:
    parser.add_argument("items", nargs="+", metavar="PROFILE|key=value", help="a sweep profile (YAML) and overrides for every cell")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: the profile's)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the table and plots")
    parser.add_argument("--status", action="store_true",
                        help="print which cells are finished, running, started or not started, and an estimate of the "
                             "time left; runs and writes nothing")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar, one line per finished cell only (the bar is also left out when the "
                             "output is not a terminal, e.g. a log file)")
    parser.add_argument("--only", default=None, help="comma-separated method labels to run")
    parser.add_argument("--tasks", default=None, help="comma-separated task labels to run (with --only: both must match)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds of the profile's to run (e.g. 0 for a first pass over every cell, "
                             "or to split the seeds across machines; with --only/--tasks: all must match)")
    parser.add_argument("--launcher", choices=("local", "submitit"), default="local",
                        help="local: cells as processes on this machine; submitit: one job per cell (Slurm, or its local executor)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="cells at once (default: one per CPU core, one thread each; submitit on Slurm: every cell)")
    parser.add_argument("--submitit", action="append", default=[], metavar="KEY=VALUE",
                        help="submitit executor setting over the profile's 'submitit:' section (partition=gpu, time_min=240, "
                             "gpus_per_cell=1, ...; see docs/distributed.md)")


def select(todo: list, only: str, labels: list[str], *, option: str = "--only", kind: str = "method") -> list:
    """The cells whose method label (``--only``) or task label (``--tasks``) is listed; an unknown
    label lists the valid ones."""
    keep = [x.strip() for x in only.split(",")]
    unknown = [x for x in keep if x not in labels]
    if unknown:
        raise ConfigError(f"sweep {option}: unknown {kind} label {', '.join(repr(x) for x in unknown)}; the profile's are {', '.join(labels)}.")
    return [c for c in todo if getattr(c, kind) in keep]


def select_seeds(todo: list, seeds: str, profile_seeds: list[int]) -> list:
    """The cells of the listed seeds (``--seeds``); a seed the profile does not run lists its seeds."""
    try:
        keep = [int(x) for x in seeds.split(",")]
    except ValueError:
        raise ConfigError(f"sweep --seeds: {seeds!r} is not a comma-separated list of integers; e.g. --seeds 0 or --seeds 1,2.") from None
    unknown = [x for x in keep if x not in profile_seeds]
    if unknown:
        raise ConfigError(f"sweep --seeds: the profile has no seed {', '.join(map(str, unknown))}; its seeds are "
                          f"{', '.join(map(str, profile_seeds))}.")
    return [c for c in todo if c.seed in keep]


def reference_labels(cells: list, names: set[str]) -> set[str]:
    """The method labels whose method is one of ``names`` (the reference rows')."""
    from ..sweep import cell_identity

    return {c.method for c in cells if cell_identity(c.config)[0] in names}


def _report_cells(finished, bar, failures: list, busy: list) -> None:
    """One line per cell as it ends; failures and busy cells collected for the summary."""
    for cell, result in finished:
        bar.update(1)
        status = result["status"]
        if status == "failed":
            failures.append((cell.key, result["error"], result["log"]))
            detail = f" ({result['error']})"
        elif status == "running elsewhere":
            busy.append(cell.key)
            detail = f" (skipped: {result['error']})"
        else:
            detail = f" test {result['metric']}={result['test'].get(result['metric'], float('nan')):.4g} in {result.get('wall_time_s', 0):.0f}s"
        tqdm.write(f"{cell.key}: {status}{detail}")


def unless_profile_changed(profile_path: Path, original: bytes, run_one):
    """``run_one`` for cells that are finished or start while the profile file is as it was when
    the sweep read it. A sweep holds its profile in memory for hours; if the file is edited (a task
    revised) meanwhile, a cell started from the old copy would be written with the old config into
    the revised profile's folders. Such a cell is not started: it is reported failed, and re-running
    the sweep gives it the current profile. ``original``: the file's bytes as the sweep read it."""
    from ..sweep import cell_dir

    def guarded(output: Path, cell, **kw):
        if not (cell_dir(output, cell) / "results.json").is_file():
            try:
                now = profile_path.read_bytes()
            except OSError:
                now = None
            if now != original:
                return {"status": "failed", "log": str(profile_path),
                        "error": f"not started: the profile {str(profile_path)!r} changed since this sweep read it; "
                                 f"re-run the sweep to run this cell with the profile as it is now"}
        return run_one(output, cell, **kw)

    return guarded


def submitit_settings(profile: dict, items: list[str]) -> dict:
    """The profile's ``submitit:`` section with ``--submitit KEY=VALUE`` on top, checked."""
    from ..launchers import check_submitit_section
    from ..runconfig import parse_overrides

    settings = dict(profile.get("submitit") or {})
    for path, value in parse_overrides(items, example="time_min=60"):
        settings[".".join(path)] = value
    return check_submitit_section(settings, "sweep --submitit" if items else f"sweep profile {profile['name']!r}")


def run(args, kit) -> int:
    from .. import sweep
    from ..launchers import check_jobs, make_launcher
    from ..report import write_report
    from ..summary import method_provenance
    from ..sweep import check_existing, check_output, collect, stray_cells
    from ..sweep_profile import apply_cli_overrides, cells, expand_methods, read_profile
    from .run import split_items

    path, overrides = split_items(args.items, "sweep", "--only, --tasks and --seeds")
    if path is None:
        raise ConfigError("sweep needs a profile file (e.g. benchmarks/profiles/tiny.yaml) before its key=value overrides.")
    profile = apply_cli_overrides(read_profile(Path(path)), overrides)
    profile_bytes = Path(path).read_bytes()  # now, not at launch: the cell checks below take a while
    # '~' expanded here, once: the cells' own runs expand it, so a literal '~' folder would split the sweep.
    output = Path(args.output or profile["output"]).expanduser()
    check_output(output)
    method_labels = list(expand_methods(profile["methods"], kit))
    profile_cells = list(cells(profile, kit))  # every cell's config checked before the first one trains
    profile_keys = {(c.method, c.task, c.seed) for c in profile_cells}
    todo = profile_cells
    if args.only is not None:
        todo = select(todo, args.only, method_labels)
    if args.tasks is not None:
        todo = select(todo, args.tasks, list(profile["tasks"]), option="--tasks", kind="task")
    if args.seeds is not None:
        todo = select_seeds(todo, args.seeds, list(profile["seeds"]))
    check_existing(output, todo)
    settings = submitit_settings(profile, args.submitit)
    if args.submitit and args.launcher != "submitit":
        raise ConfigError(f"sweep --submitit {args.submitit[0]}: submitit settings apply to --launcher submitit only; "
                          f"add --launcher submitit (or leave --submitit out).")
    jobs = check_jobs(args.jobs)
    references = {e.name for e in kit.methods if e.meta.get("reference")}
    controls = {e.name for e in kit.methods if e.meta.get("uses_pretrained_body") is False} - references
    provenance = method_provenance(kit)
    if args.status:
        from ..launchers import default_jobs
        from ..sweep_status import status_report

        if args.report_only:
            raise ConfigError("sweep: --status and --report-only do different things (show progress / rebuild the report); give one.")
        print(status_report(profile, output, todo, profile_cells=profile_cells, cores=jobs or default_jobs(),
                            references=reference_labels(profile_cells, references)))
        return 0
    failures = []
    if args.report_only:
        if not collect(output, profile_cells):
            raise ConfigError(f"sweep {profile['name']}: no finished cell in {str(output)!r} yet; run the sweep without --report-only first.")
    else:
        from ..sweep import cell_dir, check_sweep_folder
        from ..sweep_preflight import preflight

        check_sweep_folder(output)
        pending = [cell for cell in todo if not (cell_dir(output, cell) / "results.json").is_file()]
        preflight(pending, kit, local=args.launcher == "local")
        busy = []
        launcher = make_launcher(args.launcher, output=output, jobs=jobs, settings=settings)
        keep = bool(profile.get("keep_checkpoints", False))
        # disable=None: no bar where stderr is no terminal (a log file would fill with redraws)
        bar = tqdm(total=len(todo), desc=f"sweep {profile['name']}", dynamic_ncols=True,
                   disable=True if args.no_progress else None)
        tqdm.write(f"cells and report in {output.resolve()}")  # a relative profile output is read from the current folder
        tqdm.write(launcher.describe())
        # A cell config's `threads` (from base, task or method; 0 = unset) wins over the launcher's cap.
        cell_threads = sorted({cell.config.get("threads") for cell in todo if cell.config.get("threads")})
        if cell_threads:
            tqdm.write(f"  the cells' configs set threads={'/'.join(map(str, cell_threads))}, which wins over that cap")
        if args.launcher == "submitit":
            finished = launcher.run(todo, output, keep)
        else:  # looked up at call time: tests replace sweep.run_cell
            guarded = unless_profile_changed(Path(path), profile_bytes, lambda *a, **kw: sweep.run_cell(*a, **kw))
            finished = launcher.run(todo, lambda cell, env: guarded(output, cell, keep_checkpoints=keep, env=env))
        try:
            _report_cells(finished, bar, failures, busy)
        finally:  # an interrupt ends the cells (or cancels the jobs) still running, now
            finished.close()
        bar.close()
        # Summaries in the profile's cell order, not completion order: parallel cells finish in any order.
        position = {cell.key: i for i, cell in enumerate(todo)}
        failures.sort(key=lambda f: position.get(f[0], len(position)))
        busy.sort(key=lambda key: position.get(key, len(position)))
        for key, error, log in failures:
            print(f"FAILED {key}: {error} (log: {log})", file=sys.stderr)
        if busy:
            print(f"sweep {profile['name']}: {len(busy)} cell(s) running elsewhere, not run here: {', '.join(busy)}; "
                  f"re-run the sweep when they finish.", file=sys.stderr)
    rows = collect(output, profile_cells)
    strays = stray_cells(output, profile_cells)
    if strays:
        print(f"sweep {profile['name']}: left out of the report, not cells of this profile: {', '.join(strays[:5])}"
              f"{f' and {len(strays) - 5} more' if len(strays) > 5 else ''} (under {str(output / 'cells')!r}).",
              file=sys.stderr)
    if rows:
        # Tables and plots list methods and tasks in the profile's order.
        method_order = {label: i for i, label in enumerate(method_labels)}
        task_order = {label: i for i, label in enumerate(profile["tasks"])}
        rows.sort(key=lambda r: (method_order.get(r["method_label"], len(method_order)),
                                 task_order.get(r["task_label"], len(task_order)), r["seed"]))
        command = "mona-kit sweep " + " ".join(shlex.quote(a) for a in args.items)
        if args.output is not None and Path(args.output) != Path(profile["output"]):
            command += f" --output {shlex.quote(str(args.output))}"  # rerunning the command must find these cells
        # An unfinished sweep says so in the table's title (its missing cells are simply absent).
        done = sum((r["method_label"], r["task_label"], r["seed"]) in profile_keys for r in rows)
        shown = f"{len(rows)} cells" if done == len(rows) == len(profile_keys) else f"{done} of the profile's {len(profile_keys)} cells"
        for p in write_report(output, rows, title=f"{profile['name']}: {shown}", command=command,
                              references=references, controls=controls, provenance=provenance):
            print(p)
    if failures:
        print(f"sweep {profile['name']}: {len(failures)} of {len(todo)} cells failed ({', '.join(k for k, _, _ in failures)}); "
              f"see their logs, fix and re-run the sweep (finished cells are kept).", file=sys.stderr)
        return 1
    return 0
