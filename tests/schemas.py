"""The JUnit XML schema the tests validate junit.xml against: ``junit-10.xsd``, the
Jenkins xUnit plugin's schema that pytest validates its own reports with. It is not kept
in this repository; the first test that needs it takes it from pytest's source
distribution on PyPI (pinned by digest, like the testbed's jars from Maven Central) into
``.cache/`` (git-ignored)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

import xmlschema

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "schemas"
SDIST = (
    "https://files.pythonhosted.org/packages/79/42/"
    "bb4641652e58dedeac2ec51abc1f8cae4fee4ec63899a0999016229a0f2a/pytest-9.2.0.tar.gz"
)
SDIST_SHA256 = "97c4f3b1f3c7414aa36465e09b8220f1d03627993bd51b1282e193753c80557b"
MEMBER = "pytest-9.2.0/testing/example_scripts/junit-10.xsd"


def junit_xsd() -> Path:
    """The schema file, fetched once."""
    target = CACHE / "junit-10.xsd"
    if target.exists():
        return target
    try:
        with urllib.request.urlopen(SDIST, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise RuntimeError(f"JUnit schema: cannot download {SDIST}: {exc}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != SDIST_SHA256:
        raise RuntimeError(f"JUnit schema: {SDIST} has sha256 {found}, expected {SDIST_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(data)) as sdist:
        member = sdist.extractfile(MEMBER)
        if member is None:
            raise RuntimeError(f"JUnit schema: {MEMBER} missing from {SDIST}")
        schema = member.read()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(schema)
    partial.replace(target)
    return target


def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(junit_xsd()))


#: The Bencher Metric Format's JSON Schema, as https://bencher.dev/bmf.json publishes it
#: (draft-07): benchmark -> measure -> {value, lower_value, upper_value}, numbers, value
#: required. Checked by bmf_errors below (jsonschema is not a dependency).
BMF_SCHEMA: dict = {
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}


def schema_errors(document: object, schema: dict, where: str = "$") -> list[str]:
    """What in ``document`` breaks ``schema``: the draft-07 keywords BMF_SCHEMA uses
    (type object/number, patternProperties, properties, required), nothing more. Numbers
    are ints or finite floats, not booleans (JSON Schema's "number")."""
    import math
    import re

    kind = schema.get("type")
    if kind == "number":
        ok = isinstance(document, (int, float)) and not isinstance(document, bool)
        if not ok or isinstance(document, float) and not math.isfinite(document):
            return [f"{where}: {document!r} is not a number"]
        return []
    if kind == "object" and not isinstance(document, dict):
        return [f"{where}: {type(document).__name__} is not an object"]
    errors: list[str] = []
    assert isinstance(document, dict)
    errors += [f"{where}: {key!r} is required" for key in schema.get("required", [])
               if key not in document]  # fmt: skip
    for key, value in document.items():
        if key in schema.get("properties", {}):
            errors += schema_errors(value, schema["properties"][key], f"{where}.{key}")
        for pattern, inner in schema.get("patternProperties", {}).items():
            if re.search(pattern, key):
                errors += schema_errors(value, inner, f"{where}[{key!r}]")
    return errors
