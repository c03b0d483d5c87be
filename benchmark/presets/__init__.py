"""Presets: named sets of params.yaml overrides shipped with the package (``<name>.yaml`` beside this file).

``tiny`` runs the whole DAG in a few minutes on 2 CPU cores (the tests run it, on the synthetic data and on
a real folder). A preset may start from another: ``_extends: <name>`` merges its own overrides over that one's.
:func:`apply` merges a preset into a params dict and validates the result, so a preset that names an unknown key
fails like params.yaml would.
"""

from __future__ import annotations

from pathlib import Path

from benchmark import config
from benchmark.errors import ConfigError

FOLDER = Path(__file__).parent


def names() -> list[str]:
    """The shipped presets."""
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def load(name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The overrides of preset ``name`` (over those of the preset it ``_extends``); an unknown name raises
    ConfigError listing the known ones, and so does a preset that extends itself through a cycle."""
    path = FOLDER / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}'; known presets: {', '.join(names())}")
    if name in _seen:
        raise ConfigError(f"preset '{name}' extends itself: {' -> '.join((*_seen, name))}")
    own = config.read_yaml(path) or {}
    base = own.pop("_extends", None)
    return merge(load(base, (*_seen, name)), own) if base else own


def merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, recursively for nested mappings (neither is modified)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply(params: dict, name: str, extra: dict | None = None) -> dict:
    """``params`` (a parsed params.yaml) with preset ``name`` and then ``extra`` merged in, validated."""
    merged = merge(merge(params, load(name)), extra or {})
    config.build(config.Params, merged)
    return merged
