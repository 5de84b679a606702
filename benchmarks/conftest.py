import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the mona-kit CLI sets it (bench_threads.py measures why)

sys.path.insert(0, str(Path(__file__).parent))


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record torch's version in --benchmark-json's machine_info (benchmarks/perf_table.py prints it)."""
    import torch

    machine_info["torch_version"] = torch.__version__
