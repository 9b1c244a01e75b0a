"""The inventory's JSON Schema (controller/run/schema.py): committed up to date, and the
inventories in the checkout valid against it (a small validator for the keywords it uses:
jsonschema is not a dependency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from parbench.controller.run import schema
from parbench.controller.run.inventory import load

REPO = Path(__file__).resolve().parents[2]
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def errors(value: Any, shape: dict, where: str = "") -> Iterator[str]:
    """Where ``value`` breaks ``shape``: type, enum, minimum/maximum (exclusive too),
    properties, additionalProperties, required, items, minItems, anyOf."""
    known = {"$schema", "title", "description", "default", "type", "enum", "minimum",
             "maximum", "exclusiveMinimum", "exclusiveMaximum", "properties",
             "additionalProperties", "required", "items", "minItems", "anyOf"}  # fmt: skip
    assert set(shape) <= known, set(shape) - known  # a keyword this validator ignores
    types = shape.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is(value, n) for n in names):
            yield f"{where}: not {types}"
            return
    if "enum" in shape and value not in shape["enum"]:
        yield f"{where}: not one of {shape['enum']}"
    if _is(value, "number"):
        for key, bad in (
            ("minimum", lambda v, b: v < b),
            ("maximum", lambda v, b: v > b),
            ("exclusiveMinimum", lambda v, b: v <= b),
            ("exclusiveMaximum", lambda v, b: v >= b),
        ):
            if key in shape and bad(value, shape[key]):
                yield f"{where}: {key} {shape[key]}"
    if isinstance(value, dict):
        props = shape.get("properties", {})
        for key in shape.get("required", []):
            if key not in value:
                yield f"{where}.{key}: required"
        for key, inner in value.items():
            if key in props:
                yield from errors(inner, props[key], f"{where}.{key}")
            elif shape.get("additionalProperties") is False:
                yield f"{where}.{key}: not allowed"
            elif isinstance(shape.get("additionalProperties"), dict):
                yield from errors(inner, shape["additionalProperties"], f"{where}.{key}")
    if isinstance(value, list):
        if len(value) < shape.get("minItems", 0):
            yield f"{where}: fewer than {shape['minItems']} items"
        for i, item in enumerate(value):
            yield from errors(item, shape.get("items", {}), f"{where}[{i}]")
    if "anyOf" in shape and not any(not list(errors(value, s, where)) for s in shape["anyOf"]):
        yield f"{where}: matches none of anyOf"


def test_the_committed_schema_is_up_to_date() -> None:
    committed = (REPO / schema.FILE).read_text()
    assert committed == schema.text(), (
        f"{schema.FILE} is out of date: write it again with"
        " python -m parbench.controller.run.schema"
    )


@pytest.mark.parametrize("name", ["inventory.example.yaml", "inventory.yaml"])
def test_the_checkouts_inventories_are_valid_and_name_the_schema(name: str) -> None:
    text = (REPO / name).read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={schema.FILE}"
    document = yaml.safe_load(text)
    assert list(errors(document, json.loads((REPO / schema.FILE).read_text()))) == []
    load(REPO / name)  # and the loader agrees


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"nodes": [{"id": "a", "host": "h", "prot": 22}]}, ".nodes: matches none of anyOf"),
        ({"defaults": {"clients": 0}, "nodes": ["h"]}, ".defaults.clients: minimum 1"),
        ({"defaults": {"read_type": "FAST"}, "nodes": ["h"]}, ".defaults.read_type: not one"),
        ({"ssh": {"strict_host_keys": "no"}, "nodes": ["h"]}, ".ssh.strict_host_keys: not"),
        ({"defaults": {"user": "me", "port": 2222, "workdir": "/w"}}, ".nodes: required"),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(document: dict, error: str) -> None:
    found = list(errors(document, schema.generate()))
    assert found and found[0].startswith(error), found


def test_the_schema_knows_every_declared_key() -> None:
    from parbench.controller.run.inventory import NODE_DEFAULTS, NODE_KEYS, SSH_KEYS
    from parbench.controller.run.settings import SETTINGS

    props = schema.generate()["properties"]
    assert list(props["defaults"]["properties"]) == [
        *(s.name for s in SETTINGS),
        *NODE_DEFAULTS,
    ]
    assert list(props["ssh"]["properties"]) == [s.name for s in SSH_KEYS]
    node = props["nodes"]["anyOf"][0]["items"]["anyOf"][1]
    assert list(node["properties"]) == [s.name for s in NODE_KEYS]
