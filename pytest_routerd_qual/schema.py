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


def _validator(schema: dict[str, Any], origin: str) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaError(
            f"{origin} is not a valid JSON Schema: {_shorten(exc.message)}"
        ) from None
    return cls(schema, format_checker=_format_checker())


@functools.cache
def packaged_validator(name: str) -> jsonschema.protocols.Validator:
    """The validator for a schema shipped in the package, built once per process."""
    data = (
        importlib.resources.files(__package__).joinpath(f"schemas/{name}").read_bytes()
    )
    return _validator(parse_json_object(data, f"packaged {name}"), f"packaged {name}")


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
