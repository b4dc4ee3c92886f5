"""Typed, validated configuration dataclasses.

Every config in rlx is a frozen dataclass whose fields are declared with :func:`field`, which records
the allowed values. :func:`from_dict` builds a config from plain data (YAML, CLI ``--set``) and raises
:class:`ConfigError` with one line naming the field and what is allowed, before anything compiles.
Fields marked ``traced=True`` are shape-free hyperparameters that live inside the train state as
arrays, so they can be vmapped over; all others are static (they fix shapes or program structure).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is invalid. The message is one line that names the field."""


def field(
    default: Any = dataclasses.MISSING,
    *,
    doc: str = "",
    traced: bool = False,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    read_with: dict[str, tuple[Any, ...]] | None = None,
) -> Any:
    """Declares a config field with its documentation and allowed range or choices. ``read_with``: the settings
    of other fields of the same section (a dotted path reaches into a nested one) under which training reads it
    at all, e.g. ``{"norm": ("batch_renorm",)}``; with any other, :func:`unread_fields` names it."""
    metadata = dict(doc=doc, traced=traced, gt=gt, ge=ge, le=le, lt=lt, choices=choices, read_with=read_with or {})
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def traced_fields(config_cls: type) -> tuple[str, ...]:
    """Names of the traced (vmappable) fields of a config class."""
    return tuple(f.name for f in dataclasses.fields(config_cls) if f.metadata.get("traced"))


def yaml_word(value: Any) -> str:
    """A setting as a config file spells it: true, null, [64, 64], polyak."""
    if isinstance(value, tuple):
        return "[" + ", ".join(map(yaml_word, value)) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return f"{value:g}" if isinstance(value, float) else str(value)


def unread_fields(section: Any, prefix: str = "") -> dict[str, str]:
    """The fields of a config (its nested sections' too, as dotted paths after ``prefix``) that its other
    settings leave unread, each with why (their ``read_with``): ``{"critic.renorm_momentum": "read only with norm:
    batch_renorm; norm is layer"}``. A section that is unread as a whole is named once."""
    unread = {}
    for f in dataclasses.fields(section):
        for path, allowed in f.metadata.get("read_with", {}).items():
            current = section
            for part in path.split("."):
                current = getattr(current, part)
            if current not in allowed:
                words = " or ".join(map(yaml_word, allowed))
                unread[prefix + f.name] = f"read only with {path}: {words}; {path} is {yaml_word(current)}"
                break
        else:
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                unread.update(unread_fields(value, f"{prefix}{f.name}."))
    return unread


def unread_traced_fields(agent: Any, after_start: bool = True) -> dict[str, str]:
    """An algorithm config's traced fields that training never reads with its other settings, and why (their
    ``read_with``); ``after_start``: also those read only when the state is made (the config's
    ``read_only_at_start`` method, where it has one)."""
    traced = traced_fields(type(agent))
    unread = {name: why for name, why in unread_fields(agent).items() if name in traced}
    at_start = getattr(agent, "read_only_at_start", None)
    return {**unread, **at_start()} if after_start and at_start is not None else unread


def whole_number(text: str) -> int | None:
    """``text`` as an integer, also in float notation when it is a whole number (``1e6``, ``2.5e5``); else None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _describe_range(meta: dict) -> str:
    parts = []
    for key, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            value = meta[key]
            parts.append(f"{symbol} {value}" if isinstance(value, int) else f"{symbol} {value:g}")
    return " and ".join(parts)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; returns the converted value."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, name)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{name}: expected null, got {value!r}")
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_coerce(v, item_tp, f"{name}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=f"{name}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and (number := whole_number(value)) is not None:  # YAML 1.1 reads 1e6 as a string
            return number
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string.
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):
            return number
        kind = "a finite number" if number is not None else "a number"  # inf passed "> 0" and diverged after compiling
        raise ConfigError(f"{name}: expected {kind}, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config annotation {tp!r} for {name}")


def _check_meta(value: Any, meta: dict, name: str) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name}: must be one of {allowed}; got {value!r}")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        ok = all(
            [
                meta.get("gt") is None or item > meta["gt"],
                meta.get("ge") is None or item >= meta["ge"],
                meta.get("lt") is None or item < meta["lt"],
                meta.get("le") is None or item <= meta["le"],
            ]
        )
        if not ok:
            raise ConfigError(f"{name}: must be {_describe_range(meta)}; got {value!r}")


def _shortest(value: Any) -> Any:
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 0:
        scalar = array[()]  # a NumPy float32 scalar: format_float_positional would widen a 0-d array first
        return (
            float(np.format_float_positional(scalar, unique=True, trim="-")) if np.isfinite(scalar) else float(scalar)
        )
    return [_shortest(item) for item in array]


def plain_data(value: Any) -> Any:
    """``value`` with NumPy (or JAX) scalars and arrays as Python numbers and lists, inside dicts, lists and
    tuples too: a config built in Python from ``np.arange`` seeds or ``np.float32`` rates validates like one
    read from YAML, and is written back to YAML (which cannot represent NumPy types)."""
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        return (tuple if isinstance(value, tuple) else list)(plain_data(v) for v in value)
    if not isinstance(value, (str, bytes)) and hasattr(value, "tolist") and hasattr(value, "dtype"):
        if getattr(value.dtype, "kind", "") == "f" and value.dtype.itemsize < 8:
            # the shortest decimal that reads back as this float32 (np.float32(1e-3) is 0.001, not its float64
            # expansion 0.0010000000474974513, which config.yaml and the sweep tables would show)
            return _shortest(value)
        return value.tolist()  # a 0-d array or NumPy scalar gives a Python number, an array a list
    return value


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Builds the dataclass ``cls`` from ``data``, validating names, types and ranges."""
    data = plain_data(data)
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        moved = getattr(cls, "MOVED", {}).get(key)
        if moved is not None:
            raise ConfigError(f"{prefix}{key}: moved to {prefix}{moved}")
        unsupported = getattr(cls, "UNSUPPORTED", {}).get(key)
        if unsupported is not None:
            raise ConfigError(f"{prefix}{key}: {unsupported}")
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        raise ConfigError(f"{prefix}{key}: unknown field{hint}; allowed: {', '.join(sorted(fields))}")
    values = {}
    for name, f in fields.items():
        full = f"{prefix}{name}"
        default = _default(f)
        if name in data:
            raw = data[name]
            if dataclasses.is_dataclass(default) and isinstance(raw, dict):
                raw = merge(to_dict(default), raw)  # a nested section's unset fields keep this field's default
            value = _coerce(raw, hints[name], full)
        elif default is not dataclasses.MISSING:
            value = default
        else:
            raise ConfigError(f"{full}: required field is missing")
        _check_meta(value, f.metadata, full)
        values[name] = value
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None and inspect.signature(check).parameters:
        check(prefix)
    elif check is not None:
        check()
    return config


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def to_dict(config: Any) -> dict:
    """Plain-data (YAML-ready) view of a config dataclass, tuples as lists."""

    def convert(value):
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return convert(config)


def merge(base: dict, override: dict) -> dict:
    """Recursively merges ``override`` into a copy of ``base``."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_assignments(data: dict, assignments: list[str]) -> dict:
    """``data`` with each ``--set key=value`` merged in, in order; a key given twice, or one inside another that is
    also set (``agent.policy`` and ``agent.policy.hidden``), is a ConfigError (as a YAML key or an env option
    given twice is), not last-wins."""
    seen: dict[str, str] = {}
    for text in assignments:
        key = text.split("=", 1)[0].strip()
        if key in seen and "=" in text:
            raise ConfigError(f"--set {key}: given twice ({seen[key]!r} and {text!r}); keep one")
        outer = next((k for k in seen if key.startswith(k + ".") or k.startswith(key + ".")), None)
        if outer is not None and "=" in text:  # which one wins would depend on their order
            inner, outside = (key, outer) if key.startswith(outer + ".") else (outer, key)
            raise ConfigError(f"--set {inner}: is inside {outside}, which is also set; set one of them")
        seen[key] = text
        data = merge(data, parse_assignment(text))
    return data


def parse_assignment(text: str) -> dict:
    """Turns ``"agent.learning_rate=1e-3"`` into ``{"agent": {"learning_rate": 1e-3}}``."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. agent.learning_rate=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty field name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    nested: dict = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error rather than last-wins (a
    second ``agent:`` section would otherwise silently drop the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor``: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise _DuplicateKey(f"key {key!r} given twice (line {key_node.start_mark.line + 1})")
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str, what: str = "--config") -> dict:
    """Reads a YAML mapping; a missing or malformed file (a key given twice included) is a one-line ConfigError
    naming ``what`` (the option or kind of file it came from)."""
    try:
        with open(path) as f:
            data = yaml.load(f, Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a directory, not a YAML file") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "parse error"
        raise ConfigError(f"{what} {path}: invalid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at top level")
    return data


def check_stop_after_chunks(stop_after_chunks: int | None, name: str = "stop_after_chunks") -> None:
    """Refuses a stop that is not a positive number of chunks (``None``: run to the end)."""
    whole = isinstance(stop_after_chunks, int) and not isinstance(stop_after_chunks, bool)
    if stop_after_chunks is not None and (not whole or stop_after_chunks <= 0):
        raise ConfigError(f"{name}: must be > 0 chunks (or left out to run to the end); got {stop_after_chunks}")
