"""Typed, frozen configs: plain data that validates itself and prints in run records.

Component configs are ``attrs`` classes declared with :func:`option`. Options
arrive as plain dicts (YAML or ``key=value`` overrides) and are turned into
config objects by :func:`build_config`, which rejects unknown keys with
suggestions and values of the wrong type, outside their choices or outside their range
(``option(3, min=1)``; floats must also be finite unless a field allows otherwise).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .errors import ConfigError, did_you_mean

_MISSING = attrs.NOTHING


#: The seeds every RNG here accepts: torch takes up to 2**64 - 1, and seeds get small offsets
#: added (per epoch, per stream), so the top half is kept free for them.
SEED_MAX = 2**63 - 1


def option(
    default: Any = _MISSING,
    *,
    help: str = "",
    choices: tuple | None = None,
    factory=None,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    finite: bool = True,
):
    """A config field with a help text (shown by ``mona-kit describe``).

    ``min``/``max`` bound a number (or every number of a tuple/list), inclusive unless
    ``min_exclusive``/``max_exclusive``; None passes when the type allows it. Float values
    must be finite unless ``finite=False``. Ranges are checked by :func:`build_config` (one-line
    errors naming the section) and again when a config is constructed directly.
    """
    metadata: dict[str, Any] = {"help": help}
    validators = []
    if choices is not None:
        metadata["choices"] = tuple(choices)
        validators.append(attrs.validators.in_(choices))
    if min is not None or max is not None:
        metadata["range"] = (min, max, min_exclusive, max_exclusive)
    if not finite:
        metadata["finite"] = False
    if "range" in metadata or not finite:
        validators.append(_range_validator)
    validator = validators[0] if len(validators) == 1 else (attrs.validators.and_(*validators) if validators else None)
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata, validator=validator)
    return attrs.field(default=default, metadata=metadata, validator=validator)


def _range_validator(instance, attribute, value) -> None:
    problem = value_problem(value, attribute.metadata)
    if problem:
        raise ConfigError(f"option {attribute.name!r} {problem}, got {value!r}; fix the value.")


def describe_range(metadata: Mapping[str, Any]) -> str:
    """The range of a field as text (e.g. ``>= 1``, ``> 0 and <= 1``); empty when unbounded."""
    bounds = metadata.get("range")
    if not bounds:
        return ""
    lo, hi, lo_x, hi_x = bounds
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_x else '>='} {_num(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_x else '<='} {_num(hi)}")
    return " and ".join(parts)


def _num(x: float) -> str:
    if isinstance(x, int) and x >= 2**32 and x == 2 ** x.bit_length() - 1:
        return f"2**{x.bit_length()} - 1"  # SEED_MAX reads better as a power of two
    return repr(x)


def value_problem(value: Any, metadata: Mapping[str, Any]) -> str | None:
    """Why ``value`` is outside the field's range or not finite, as "must be ..." (None when fine).

    A tuple or list is checked item by item.
    """
    if isinstance(value, (list, tuple)):
        for item in value:
            if _requirement(item, metadata):
                text = describe_range(metadata)
                kind = "finite numbers" if metadata.get("finite", True) else "numbers"
                return f"must hold only {kind}{' ' + text if text else ''}"
        return None
    req = _requirement(value, metadata)
    return f"must be {req}" if req else None


def _requirement(value: Any, metadata: Mapping[str, Any]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    text = describe_range(metadata)
    if isinstance(value, float) and not math.isfinite(value):
        if metadata.get("finite", True):
            return f"a finite number{' ' + text if text else ''}"
        if math.isnan(value):
            return None
    bounds = metadata.get("range")
    if not bounds:
        return None
    lo, hi, lo_x, hi_x = bounds
    if (lo is not None and (value <= lo if lo_x else value < lo)) or (hi is not None and (value >= hi if hi_x else value > hi)):
        return text
    return None


def config(cls):
    """Decorator: a frozen, keyword-only attrs config class."""
    return attrs.frozen(kw_only=True)(cls)


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check ``value`` against annotation ``tp``; returns (ok, coerced value)."""
    if tp is Any or tp is None:
        return True, value
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp), value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _type_ok(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        out = []
        for item in value:
            ok, v = _type_ok(item, args[0]) if args else (True, item)
            if not ok:
                return False, value
            out.append(v)
        return True, (tuple(out) if origin is tuple else out)
    if origin in (dict, Mapping) or tp is dict:
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if tp is float:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, (int, float)):
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if tp is Ellipsis:  # tuple[int, ...]
        return "..."
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def build_config(cls: type | None, options: Mapping[str, Any], *, where: str = "config"):
    """Build config class ``cls`` from plain ``options``, with one-line errors."""
    if cls is None:
        if options:
            given = sorted(map(str, options)) if isinstance(options, Mapping) else options  # keys of any type
            raise ConfigError(f"{where} takes no options, got {given!r}; remove them.")
        return None
    if isinstance(options, cls):
        return options
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: options must be a mapping of key: value, got {type(options).__name__}.")
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    kwargs = {}
    for key, value in options.items():
        if not isinstance(key, str):  # {1: 2} from Python or YAML: an option name is text
            raise ConfigError(
                f"{where}: option keys must be str (option names), got {type(key).__name__} {key!r}; "
                f"valid options: {', '.join(sorted(fields))}."
            )
        if key not in fields:
            raise ConfigError(
                f"{where} has no option {key!r}.{did_you_mean(key, fields)} "
                f"Valid options: {', '.join(sorted(fields))}."
            )
        field = fields[key]
        ok, value = _type_ok(value, field.type)
        choices = field.metadata.get("choices")
        if not ok:
            raise ConfigError(
                f"{where}: option {key!r} must be {_type_name(field.type)}, got {value!r}; fix the value."
            )
        if choices is not None and value not in choices:
            raise ConfigError(
                f"{where}: option {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}."
                f"{did_you_mean(str(value), [str(c) for c in choices])}"
            )
        problem = value_problem(value, field.metadata)
        if problem:
            raise ConfigError(f"{where}: option {key!r} {problem}, got {value!r}; fix the value.")
        kwargs[key] = value
    missing = [n for n, f in fields.items() if f.default is _MISSING and n not in kwargs]
    if missing:
        raise ConfigError(f"{where} needs option(s) {', '.join(missing)}; add them to the config.")
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a validator of the class itself: name the section
        raise ConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {_validator_text(exc)}") from exc


def _validator_text(exc: Exception) -> str:
    """One line for an attrs validator's error, whose str() is its whole args tuple (the Attribute's repr
    included): ``(msg, attribute, expected, value)``."""
    args = exc.args
    if len(args) == 4 and isinstance(args[0], str) and isinstance(args[1], attrs.Attribute):
        name, expected, value = args[1].name, args[2], args[3]
        if isinstance(exc, ValueError) and isinstance(expected, (tuple, list, set, frozenset)):  # validators.in_
            return f"option {name!r} must be one of {', '.join(map(repr, expected))}, got {value!r}; fix the value."
        return f"{args[0].rstrip('.')}; fix the value."
    return str(exc)


def default_problem(cls: type) -> str | None:
    """Why a default of config class ``cls`` fails the checks :func:`build_config` applies to a user's value
    (type, choices, range), or None. Checked when a plugin registers the class: there a bad default is the
    plugin's mistake, where at build time it would read as the user's."""
    try:
        attrs.resolve_types(cls)
    except Exception as exc:  # NameError: an annotation names something the module does not define
        return f"its annotations do not resolve ({type(exc).__name__}: {exc}); import what they name"
    for f in attrs.fields(cls):
        default = f.default
        if default is _MISSING:
            continue
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:  # needs the instance: nothing to check before one exists
                continue
            try:
                default = default.factory()
            except Exception as exc:
                return f"option {f.name!r}'s default factory raised {type(exc).__name__}: {exc}; fix the factory"
        ok, value = _type_ok(default, f.type)
        if not ok:
            return f"option {f.name!r} defaults to {default!r}, which is not {_type_name(f.type)}; fix the default"
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            return (f"option {f.name!r} defaults to {default!r}, which is not one of {', '.join(map(repr, choices))}; "
                    f"fix the default or the choices")
        problem = value_problem(value, f.metadata)
        if problem:
            return f"option {f.name!r} defaults to {default!r}, but it {problem}; fix the default or the range"
    return None


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (recursively), for YAML/JSON records."""
    if attrs.has(type(obj)):
        return {f.name: to_dict(getattr(obj, f.name)) for f in attrs.fields(type(obj))}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def describe_fields(cls: type | None) -> list[dict[str, Any]]:
    """Rows of (name, type, default, help, range) for ``mona-kit describe`` (range "" when unbounded)."""
    if cls is None:
        return []
    attrs.resolve_types(cls)
    rows = []
    for f in attrs.fields(cls):
        if f.default is _MISSING:
            default = "(required)"
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = repr(f.default.factory())
        else:
            default = repr(f.default)
        rows.append({
            "name": f.name, "type": _type_name(f.type), "default": default, "help": f.metadata.get("help", ""),
            "range": describe_range(f.metadata),
        })
    return rows
