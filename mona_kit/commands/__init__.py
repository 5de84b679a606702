"""Built-in CLI verbs: each module has ``configure(parser)`` and ``run(args, kit) -> int``."""
