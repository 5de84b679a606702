import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the mona-kit CLI sets it (bench_threads.py measures why)

sys.path.insert(0, str(Path(__file__).parent))
