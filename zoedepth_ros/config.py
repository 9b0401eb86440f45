"""Typed configuration: frozen dataclasses built from YAML/dicts, with checked overrides.

Every YAML file in ``config/`` maps onto exactly one frozen dataclass. Defaults live in the
dataclasses. Building from a mapping checks every key (an unknown key is an error that lists
the valid ones), converts lists to tuples and nested mappings to nested dataclasses, and
checks ``Literal`` choices. Overrides are ``dotted.key=value`` strings whose value is parsed
with :func:`ast.literal_eval` (bare words stay strings).

The model configuration (``ModelConfig``) is in :mod:`zoedepth_ros.model.config`.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.io.atomic import write_text

T = TypeVar('T')


def param(default: Any, description: str, *, low: float | None = None,
          high: float | None = None, read_only: bool = False) -> Any:
    """A dataclass field that is also a ROS parameter of the node: its description, allowed
    range and whether it may change at run time travel in the field's metadata (fields without
    it are internal settings, not parameters)."""
    metadata = {'description': description, 'low': low, 'high': high, 'read_only': read_only}
    return dataclasses.field(default=default, metadata=metadata)


def section(factory: Any, *, inline: bool = False) -> Any:
    """A nested options dataclass field. Its parameters are named ``<field>.<name>``, or just
    ``<name>`` when ``inline`` (a type embedded with the names it has on its own)."""
    return dataclasses.field(default_factory=factory, metadata={'inline': inline})


# --------------------------------------------------------------------------------------------
# Generic machinery


def _type_name(tp: Any) -> str:
    return getattr(tp, '__name__', None) or str(tp).replace('typing.', '')


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` or raise ConfigError naming ``where``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f'{where}: {value!r} is not one of {list(choices)}')
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f'{where}: {value!r} matches none of {[_type_name(a) for a in args]}')
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where}: expected a list, got {value!r}')
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f'{where}[{i}]') for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f'{where}: expected {len(args)} values, got {len(value)}')
        return tuple(_convert(v, a, f'{where}[{i}]') for i, (v, a) in enumerate(zip(value, args)))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: expected a mapping for {tp.__name__}, got {value!r}')
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{where}: expected true/false, got {value!r}')
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{where}: expected an integer, got {value!r}')
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f'{where}: expected a string, got {value!r}')
        return value
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict[str, Any], where: str = '') -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f'{where}: ' if where else ''
        raise ConfigError(
            f'{prefix}unknown key(s) {unknown} for {cls.__name__}; valid keys: {names}')
    hints = _hints(cls)
    kwargs = {k: _convert(v, hints[k], f'{where}.{k}' if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f'{where or cls.__name__}: {err}') from None


def to_dict(cfg: Any) -> Any:
    """Plain YAML-safe structure (dicts, lists, scalars) of a config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def load_config(path: str | os.PathLike[str], cls: type[T]) -> T:
    """Load a YAML file into dataclass ``cls``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f'cannot read config file {path}: {err.strerror}') from None
    except yaml.YAMLError as err:
        raise ConfigError(f'{path} is not valid YAML: {err}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level')
    return from_dict(cls, data, where=path.name)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.strip().lower()
        if lowered in ('true', 'false'):
            return lowered == 'true'
        if lowered in ('none', 'null'):
            return None
        return text


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Return a copy of ``cfg`` with ``dotted.key=value`` overrides applied and type-checked."""
    data = to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition('=')
        if not sep or not key:
            raise ConfigError(f'override {item!r} must look like key=value (e.g. optim.lr=1e-4)')
        node = data
        parts = key.strip().split('.')
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f'override {item!r}: no section {part!r}')
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            valid = sorted(node) if isinstance(node, dict) else []
            raise ConfigError(f'override {item!r}: unknown key {parts[-1]!r}; valid keys: {valid}')
        node[parts[-1]] = _parse_value(text)
    return from_dict(type(cfg), data)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``{dotted name: value}`` of nested mappings (a params file's sections)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update({f'{key}.{name}': item for name, item in flatten(value).items()})
        else:
            flat[key] = value
    return flat
