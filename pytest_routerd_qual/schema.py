"""JSON Schema validation of manifests and results, with formats really checked."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from .documents import DocumentError, parse_json_object, read_json_document

CERTIFICATION_SCHEMA = "release-environment-certification.schema.json"
RESULT_SCHEMA = "release-qualification-result.schema.json"
#: Where routerd keeps both schemas, relative to the root of its checkout.
SCHEMA_DIRECTORY = Path("docs/releases/manifests")

_MESSAGE_LIMIT = 160


class SchemaError(Exception):
    """A schema file cannot be used to validate anything; the message says why."""


def _format_checker() -> jsonschema.FormatChecker:
    checker: jsonschema.FormatChecker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    # jsonschema checks date-time only when rfc3339-validator is importable; without
    # it every string would pass, so refuse to validate at all.
    if "date-time" not in checker.checkers:
        raise SchemaError(
            "jsonschema cannot check 'date-time' here: install rfc3339-validator"
        )
    return checker


def _validator(
    schema: dict[str, Any], origin: str, *, check: bool = True
) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    if check:
        try:
            cls.check_schema(schema)
        except jsonschema.exceptions.SchemaError as exc:
            raise SchemaError(
                f"{origin} is not a valid JSON Schema: {_shorten(exc.message)}"
            ) from None
    if cls is jsonschema.Draft202012Validator:
        schema = inline_local_refs(schema)
    return cls(schema, format_checker=_format_checker())


@functools.cache
def packaged_validator(name: str) -> jsonschema.protocols.Validator:
    """The validator for a schema shipped in the package, built once per process."""
    data = (
        importlib.resources.files(__package__).joinpath(f"schemas/{name}").read_bytes()
    )
    # Checking the packaged schema against the metaschema took 130 ms of every
    # session's start; test_schema_is_a_valid_draft_2020_12_schema checks it once.
    return _validator(
        parse_json_object(data, f"packaged {name}"), f"packaged {name}", check=False
    )


def file_validator(path: Path) -> jsonschema.protocols.Validator:
    """The validator for the schema file at ``path`` (a routerd checkout's own)."""
    try:
        document = read_json_document(path, f"schema file {path}")
    except DocumentError as exc:
        raise SchemaError(str(exc)) from None
    return _validator(document.content, f"schema file {path}")


def certification_validator(path: Path | None) -> jsonschema.protocols.Validator:
    """The manifest validator: the given schema file, else the packaged schema."""
    if path is None:
        return packaged_validator(CERTIFICATION_SCHEMA)
    return file_validator(path)


# Keywords of draft 2020-12 whose values are subschemas (a map of them, a list of
# them, or one) to inline; every other keyword's value is data, even where it has a
# "$ref" key, or is kept as written: the messages of "not" and "oneOf" quote their
# subschemas, and an inlined copy would change them.
_SCHEMA_MAPS = frozenset(
    {"$defs", "properties", "patternProperties", "dependentSchemas"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "prefixItems"})
_SCHEMA_VALUES = frozenset(
    (
        "if",
        "then",
        "else",
        "items",
        "contains",
        "additionalProperties",
        "propertyNames",
    )
)
# Keywords whose meaning an inlined copy could change: leave such a schema as it is.
_NOT_INLINED = frozenset(
    (
        "$id",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "$vocabulary",
        "unevaluatedItems",
        "unevaluatedProperties",
    )
)
_LOCAL = "#/$defs/"


class _NotInlinable(Exception):
    pass


class _Inliner:
    """Copies a schema with its local definitions inlined; see inline_local_refs."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.inlined: dict[str, Any] = {}

    def definition(self, reference: object, seen: frozenset[str]) -> Any:
        if not isinstance(reference, str) or not reference.startswith(_LOCAL):
            raise _NotInlinable
        name = reference.removeprefix(_LOCAL)
        if name in seen or name not in self.definitions or set(name) & set("/~%"):
            raise _NotInlinable
        if name not in self.inlined:
            self.inlined[name] = self.subschema(self.definitions[name], seen | {name})
        return self.inlined[name]

    def subschema(self, node: Any, seen: frozenset[str], *, root: bool = False) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            if len(node) > 1:
                raise _NotInlinable
            return self.definition(node["$ref"], seen)
        if not _NOT_INLINED.isdisjoint(node.keys() - ({"$id"} if root else set())):
            raise _NotInlinable
        return {key: self.keyword(key, value, seen) for key, value in node.items()}

    def keyword(self, key: str, value: Any, seen: frozenset[str]) -> Any:
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            return {name: self.subschema(item, seen) for name, item in value.items()}
        if key in _SCHEMA_LISTS and isinstance(value, list):
            return [self.subschema(item, seen) for item in value]
        if key in _SCHEMA_VALUES:
            return self.subschema(value, seen)
        return value


def inline_local_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``{"$ref": "#/$defs/name"}`` replaced by its definition.

    jsonschema resolves a ``$ref`` through its registry each time an instance meets
    it: the packaged certification schema makes about 80 such lookups for a typical
    manifest and 5 more for each entry of ``checks``, half the time of validating.
    The copy accepts and refuses the same documents with the same errors; only an
    error's ``schema_path`` loses its ``$ref`` step. A schema that cannot be copied
    faithfully (a ``$ref`` that is not local or has sibling keywords, a recursive
    definition, identifiers, dynamic references) is returned as it is.
    """
    definitions = schema.get("$defs")
    if not isinstance(definitions, dict):
        return schema
    try:
        inlined: dict[str, Any] = _Inliner(definitions).subschema(
            schema, frozenset(), root=True
        )
    except _NotInlinable:
        return schema
    return inlined


def schema_errors(
    validator: jsonschema.protocols.Validator, instance: Any
) -> list[str]:
    """Every way ``instance`` breaks the schema, most relevant first, each with its
    JSON path."""
    errors: Iterable[jsonschema.ValidationError] = validator.iter_errors(instance)
    ordered = sorted(errors, key=jsonschema.exceptions.relevance)
    return [_describe(error) for error in ordered]


def _describe(error: jsonschema.ValidationError) -> str:
    # An error of a combinator (oneOf, anyOf) repeats the whole instance in its
    # message; the most relevant of its sub-errors says what to fix.
    if error.context:
        error = jsonschema.exceptions.best_match(error.context) or error
    return f"{error.json_path}: {_shorten(error.message)}"


def _shorten(message: str) -> str:
    if len(message) <= _MESSAGE_LIMIT:
        return message
    return message[: _MESSAGE_LIMIT - 1] + "\u2026"
