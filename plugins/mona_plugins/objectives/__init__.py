"""First-party objectives: task losses, distribution distances (ORCA, modality gap) and
representation objectives (MoNA's outer loss). Each submodule registers its own."""

from mona_kit.api import hookimpl


@hookimpl
def register_objectives(register):
    from . import distances, representation, task_losses

    task_losses.register_all(register)
    distances.register_all(register)
    representation.register_all(register)
