"""Where a sweep's cells run: ``local`` (N cells at once on this machine) or ``submitit`` (one job per
cell on a Slurm cluster, or submitit's local executor on this machine).

Whatever the launcher, a cell is :func:`mona_kit.sweep.run_cell`: its own ``mona-kit run`` process
writing ``OUTPUT/cells/METHOD/TASK/seedN``, so results land the same way, a failed cell is a record
(retried by the next invocation, which resumes it) and a finished one is skipped.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from .errors import ConfigError

LAUNCHERS = ("local", "submitit")

def default_jobs(cores: int | None = None) -> int:
    """``--jobs`` when not given: one cell per core, each with one thread. Measured on the shared
    2-core machine (issue 15, item 5; numbers in docs/runs.md): two darcy-16 fine-tuning cells at
    once with one thread each finished both in less time than one cell alone took with two threads.
    Intra-op threads of one process wait for each other at every operator, and lose most when other
    processes share the cores."""
    return max(1, cores if cores is not None else cpu_count())


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps a cell process's CPU threads (torch reads OMP_NUM_THREADS at start; a
    cell config's ``threads`` still wins)."""
    n = str(max(1, threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def check_jobs(jobs: Any) -> int | None:
    if jobs is None:
        return None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"sweep --jobs must be a whole number >= 1, got {jobs!r}.")
    return jobs


RunOne = Callable[[Any, dict[str, str]], dict[str, Any]]


class LocalLauncher:
    """Up to ``jobs`` cells at once on this machine, the cores shared out between them."""

    name = "local"

    def __init__(self, jobs: int | None = None):
        self.jobs = check_jobs(jobs) or default_jobs()
        self.threads = max(1, cpu_count() // self.jobs)

    def describe(self) -> str:
        return f"local launcher: {self.jobs} cell(s) at once, {self.threads} thread(s) each"

    def run(self, todo: list, run_one: RunOne) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Yield ``(cell, result)`` as cells finish. An interrupt ends every running cell process."""
        env = thread_env(self.threads)
        if self.jobs == 1:
            for cell in todo:
                yield cell, run_one(cell, env)
            return
        from .sweep import allow_cells, stop_live_cells

        allow_cells()
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="cell")
        pending = {pool.submit(run_one, cell, env): cell for cell in todo}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    cell = pending.pop(future)
                    yield cell, future.result()
        finally:
            for future in pending:
                future.cancel()
            stop_live_cells()  # an interrupt (or a raised error) ends the cells still running
            pool.shutdown(wait=True)


# --- submitit ------------------------------------------------------------------------------------

#: Profile keys of the ``submitit:`` section (and of ``--submitit KEY=VALUE``) -> their type and
#: submitit's parameter (None: handled here). Slurm-only keys are ignored by the local executor.
SUBMITIT_KEYS: dict[str, tuple[tuple[type, ...], str | None, str]] = {
    "cluster": ((str,), None, "slurm, local, or auto (slurm where sbatch exists)"),
    "folder": ((str,), None, "where submitit keeps job scripts and logs (default: OUTPUT/submitit)"),
    "partition": ((str,), "slurm_partition", "Slurm partition"),
    "account": ((str,), "slurm_account", "Slurm account"),
    "qos": ((str,), "slurm_qos", "Slurm quality of service"),
    "constraint": ((str,), "slurm_constraint", "Slurm node constraint (e.g. a100)"),
    "time_min": ((int,), "timeout_min", "wall-clock limit of one cell's job, minutes"),
    "gpus_per_cell": ((int,), "gpus_per_node", "GPUs per cell"),
    "cpus_per_cell": ((int,), "cpus_per_task", "CPUs per cell (also the cell's thread count)"),
    "mem_gb": ((int, float), "mem_gb", "memory per cell, GB"),
    "setup": ((list,), None, "shell lines run before each cell (module load ..., source venv/bin/activate)"),
    "additional": ((dict,), "slurm_additional_parameters", "any other sbatch option, e.g. {mail-type: END}"),
}


def check_submitit_section(section: Any, where: str) -> dict[str, Any]:
    """The profile's ``submitit:`` mapping, each key known and of its type."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: 'submitit' must be a mapping of executor settings, got {section!r}.")
    for key, value in section.items():
        if key not in SUBMITIT_KEYS:
            raise ConfigError(f"{where}: unknown submitit key {key!r}; valid keys: {', '.join(SUBMITIT_KEYS)}.")
        types = SUBMITIT_KEYS[key][0]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ConfigError(f"{where}: submitit.{key} must be a {' or '.join(t.__name__ for t in types)}, got {value!r}.")
        if types == (int,) and value < 1:
            raise ConfigError(f"{where}: submitit.{key} must be >= 1, got {value!r}.")
        if float in types and not (math.isfinite(value) and value > 0):  # mem_gb=-1, 0, nan, inf
            raise ConfigError(f"{where}: submitit.{key} must be a number > 0, got {value!r}.")
    if section.get("cluster", "auto") not in ("slurm", "local", "auto"):
        raise ConfigError(f"{where}: submitit.cluster must be slurm, local or auto, got {section['cluster']!r}.")
    if "setup" in section and not all(isinstance(line, str) for line in section["setup"]):
        raise ConfigError(f"{where}: submitit.setup must be a list of shell lines.")
    return dict(section)


def submitit_cell(output: str, cell: Any, keep_checkpoints: bool, env: dict[str, str]) -> dict[str, Any]:
    """A submitit job: one cell, run (or resumed) as its own ``mona-kit run`` process."""
    from .sweep import run_cell

    return run_cell(Path(output), cell, python=sys.executable, keep_checkpoints=keep_checkpoints, env=env)


class SubmititLauncher:
    """One submitit job per cell, at most ``jobs`` in flight (default: all, on a cluster)."""

    name = "submitit"

    def __init__(self, output: Path, settings: dict[str, Any], jobs: int | None = None, *, poll_s: float = 1.0):
        try:
            import submitit
        except ImportError as exc:
            raise ConfigError(
                "sweep --launcher submitit needs the submitit package: pip install 'mona-kit[scale]' (or pip install submitit)."
            ) from exc
        self.settings = settings
        cluster = settings.get("cluster", "auto")
        folder = Path(settings.get("folder") or Path(output) / "submitit")
        try:
            self.executor = submitit.AutoExecutor(folder=folder / "%j", cluster=None if cluster == "auto" else cluster)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"sweep --launcher submitit: {exc}") from exc
        self.cluster = self.executor.cluster
        params: dict[str, Any] = {"name": "mona-kit-cell", "timeout_min": 24 * 60}
        for key, value in settings.items():
            target = SUBMITIT_KEYS[key][1]
            if target is not None:
                params[target] = value
        if settings.get("setup"):
            params["slurm_setup"] = params["local_setup"] = list(settings["setup"])
        # AutoExecutor applies the current cluster's prefixed parameters and ignores the others.
        self.executor.update_parameters(**params)
        local = self.cluster != "slurm"
        self.jobs = check_jobs(jobs) or (default_jobs() if local else None)
        cpus = settings.get("cpus_per_cell")
        self.threads = cpus or (max(1, cpu_count() // self.jobs) if local else None)
        self.poll_s = poll_s

    def describe(self) -> str:
        width = "every cell" if self.jobs is None else f"{self.jobs} cell(s)"
        return f"submitit launcher ({self.cluster}): {width} at once"

    def run(self, todo: list, output: Path, keep_checkpoints: bool) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Submit cells, at most ``jobs`` in flight, and yield ``(cell, result)`` as jobs end. An
        interrupt cancels the jobs still in flight (a job already running its cell resumes next time)."""
        env = thread_env(self.threads) if self.threads else {}
        queue = list(todo)
        flight: dict[Any, Any] = {}
        try:
            while queue or flight:
                while queue and (self.jobs is None or len(flight) < self.jobs):
                    cell = queue.pop(0)
                    job = self.executor.submit(submitit_cell, str(Path(output).resolve()), cell, keep_checkpoints, env)
                    flight[job] = cell
                finished = [job for job in flight if job.done()]
                if not finished:
                    time.sleep(self.poll_s)
                for job in finished:
                    yield flight.pop(job), _job_result(job)
        finally:
            for job in flight:
                try:
                    job.cancel(check=False)
                except Exception:  # a job that ended meanwhile cannot be cancelled: nothing to do
                    pass


def _job_result(job) -> dict[str, Any]:
    """The cell's record, or a failure naming the job's log when the job itself failed (killed,
    out of time, node lost): the next invocation resumes that cell."""
    try:
        return job.result()
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        error = lines[-1] if lines else type(exc).__name__
        return {"status": "failed", "error": f"submitit job {job.job_id}: {error}", "log": str(job.paths.stderr)}


def make_launcher(name: str, *, output: Path, jobs: int | None, settings: dict[str, Any]):
    if name == "local":
        return LocalLauncher(jobs)
    if name == "submitit":
        return SubmititLauncher(output, settings, jobs)
    raise ConfigError(f"sweep --launcher must be one of {', '.join(LAUNCHERS)}, got {name!r}.")
