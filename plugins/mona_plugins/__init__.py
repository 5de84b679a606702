"""mona-kit's first-party plugins.

Each subpackage is written only against mona-kit's public API (``mona_kit.hookspecs``,
``mona_kit.components``, ``mona_kit.config``), exactly as a third-party plugin would be.
"""
