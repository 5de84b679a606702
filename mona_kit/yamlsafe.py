"""A bounded YAML loader for everything a user hands mona-kit (run configs, overrides, sweep profiles).

``yaml.safe_load`` runs no code, but it still lets a few hundred bytes expand into billions of
nodes (an alias bomb: anchors referring to anchors), recurse until Python's stack runs out
(deep nesting), keep the last of two equal keys without a word, and fail with a traceback on
binary or non-UTF-8 files. This loader bounds the size of the text, the nesting depth, the
number of aliases and the size of the document once aliases are expanded, and refuses
duplicate keys at any depth - each as a one-line :class:`~mona_kit.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

#: Limits. A real config or sweep profile is a few kB with a handful of anchors.
MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlSyntaxError(ConfigError):
    """The text is not YAML at all (callers may fall back to reading it as a plain string)."""


class _Limit(Exception):
    """Raised inside the loader; turned into a ConfigError with the source's name."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Limit(f"uses more than {MAX_ALIASES} aliases (*name); write the values out")
            return super().compose_node(parent, index)
        # The composer recurses once per level: bound it before Python's own stack limit hits.
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Limit(f"nests deeper than {MAX_DEPTH} levels (at line {mark.line + 1}); flatten it")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            line = key_node.start_mark.line + 1
            key = (key_node.tag, key_node.value)
            if key in seen:  # safe_load would silently keep the last one
                lines = f"line {line}" if seen[key] == line else f"lines {seen[key]} and {line}"
                raise _Limit(f"has key {key_node.value!r} twice ({lines}); keep one of them")
            seen[key] = line
        return node

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node


def _check_expanded_size(root: Node) -> None:
    """Refuse a document that aliases would expand past MAX_NODES (or into a cycle).

    Sizes are memoised per node, so this is linear in the composed graph however large the
    expansion it describes.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk: the graph is at most MAX_DEPTH deep, but stay off the stack anyway.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise _Limit(f"expands to more than {MAX_NODES} values once its aliases are resolved (an alias bomb); write the values out")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _Limit("holds an alias inside its own anchor (a recursive structure); remove it")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise _Limit("holds an alias inside its own anchor (a recursive structure); remove it")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml_text(text: str, *, what: str = "YAML text") -> Any:
    """Parse ``text`` within the limits; ``what`` names it in errors (e.g. "config file 'a.yaml'")."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(f"{what} is larger than {MAX_BYTES // 1024} kB; a config this big is not one mona-kit wrote or expects.")
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader already refuses control characters here
        return loader.get_single_data()
    except _Limit as exc:
        raise ConfigError(f"{what} {exc}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
            where = f" (it holds the control character #x{exc.character:04x})"
        raise YamlSyntaxError(f"{what} is not valid YAML{where}; fix the syntax.") from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. an integer with 5,000 digits
        raise ConfigError(f"{what} holds a value YAML cannot represent here ({type(exc).__name__}); fix the value.") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str | Path, what: str = "config file") -> Any:
    """Read a YAML file the user gave, within the limits; every failure is one ConfigError line.

    ``what`` says what the file is (``"sweep profile"``); the message names it and the path.
    A missing file, a folder, an unreadable, oversized, binary or non-UTF-8 file, invalid YAML,
    duplicate keys, deep nesting and alias bombs all fail here. Returns the parsed data (None
    for an empty file).
    """
    path = Path(path)
    label = f"{what} {str(path)!r}"
    try:
        if not path.is_file():
            state = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ConfigError(f"{label} {state}; check the path.")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{label} is {size} bytes, more than the {MAX_BYTES // 1024} kB a YAML config may have; check the path.")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {label}: {exc.strerror or exc}; check the path and its permissions.") from None
    if b"\x00" in data:
        raise ConfigError(f"{label} is a binary file, not YAML text; pass the YAML config.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{label} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8."
        ) from None
    return load_yaml_text(text, what=label)
