"""First-party datasets: offline target tasks, physics-generated tasks, source proxies and
loaders for the published NAS-Bench-360 and PDEBench files a user brings.

Each factory ``factory(config)`` returns a :class:`mona_kit.components.TaskData`. Entries carry
``offline=True`` when they load with no user files (tests run the contract check over those).
"""

from mona_kit.api import hookimpl


@hookimpl
def register_datasets(register):
    from . import dna, nb360, neuralop_tasks, pde_tasks, pdebench, proxies, timeseries

    for module in (neuralop_tasks, dna, timeseries, pde_tasks, proxies, nb360, pdebench):
        module.register_all(register)
