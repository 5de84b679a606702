"""First-party methods: MoNA and the cross-modal fine-tuning baselines it is compared with.

Each method is a short composition of stages (``mona_kit.stages`` plus the align and
meta-align stages here), registered by name exactly as a third-party method would be.
"""

from mona_kit.api import hookimpl


@hookimpl
def register_methods(register):
    from . import baselines, mona, orca, pare, recraft, references

    baselines.register_all(register)
    orca.register_all(register)
    pare.register_all(register)
    mona.register_all(register)
    recraft.register_all(register)
    references.register_all(register)
