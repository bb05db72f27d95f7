"""Validation against OpenAI's published API spec.

`openai_schemas.json` holds the schemas the gateway must honour, with everything they
reference, extracted from OpenAI's OpenAPI document (MIT licence). Regenerate with
`python -m tests.openai_spec ../shared/openai-openapi/openapi.json`.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

HERE = Path(__file__).parent
SCHEMAS_FILE = HERE / "openai_schemas.json"
ROOTS = [
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ListModelsResponse",
    "ErrorResponse",
]


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI's `nullable: true` (which JSON Schema ignores) as JSON Schema's own null type."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*types, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def _document() -> dict[str, Any]:
    return _nullable_to_json_schema(json.loads(SCHEMAS_FILE.read_text()))  # type: ignore[no-any-return]


@cache
def validator(name: str) -> Draft202012Validator:
    document = _document()
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


def assert_valid(name: str, instance: Any) -> None:
    """Raise AssertionError listing every way `instance` breaks OpenAI's schema `name`."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def extract(openapi_path: Path) -> dict[str, Any]:
    spec = json.loads(openapi_path.read_text())
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen:
                    seen.add(name)
                    walk(schemas[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for root in ROOTS:
        seen.add(root)
        walk(schemas[root])
    return {"components": {"schemas": {name: schemas[name] for name in sorted(seen)}}}


if __name__ == "__main__":
    SCHEMAS_FILE.write_text(json.dumps(extract(Path(sys.argv[1])), indent=0, sort_keys=True))
