"""Reading JSON documents that decide a release: strictly, once, and without blocking.

A certification manifest is evidence. Whatever parser quirk would let two readers see
different documents in the same bytes (duplicate keys, ``NaN``, a byte-order mark) is
refused here, before any rule looks at the content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

#: The largest manifest the plugin reads; routerd's manifests are a few KiB.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
#: The deepest nesting of objects and arrays accepted in a document.
MAX_DEPTH = 64
# A JSON escape of a UTF-16 surrogate (D800 to DFFF), in either case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class DocumentError(Exception):
    """A document could not be read as strict JSON; the message says why."""


@dataclass(frozen=True)
class RawDocument:
    """The bytes of a document as read once, their digest, and the parsed object."""

    path: Path
    data: bytes
    sha256: str
    content: dict[str, Any]


def _regular_file_stat(path: Path) -> os.stat_result:
    """``stat`` of ``path``, or :class:`DocumentError` unless it is a regular file.

    Nothing is opened here, so a FIFO named as a document cannot block the reader.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise DocumentError(f"{path} does not exist") from None
    except OSError as exc:
        raise DocumentError(f"{path} cannot be read: {exc.strerror}") from None
    except ValueError:  # Python's words for it vary between versions
        raise DocumentError(
            f"{str(path)!r} cannot be read: no file name holds a NUL byte"
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise DocumentError(f"{path} is {_describe_mode(status.st_mode)}, not a file")
    return status


def _open_regular(path: Path) -> BinaryIO:
    """Open the regular file at ``path`` without blocking, and check what opened:
    the file may have been swapped since it was checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DocumentError(f"{path} cannot be opened: {exc.strerror}") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise DocumentError(f"{path} changed while it was being opened")
    return handle


def read_regular_file(path: Path, limit: int) -> bytes:
    """Read at most ``limit`` bytes of the regular file at ``path``.

    Directories, FIFOs, sockets and devices are refused without being opened for a
    blocking read: a FIFO named as a manifest must not hang a CI job.
    """
    size = _regular_file_stat(path).st_size
    if size > limit:
        raise DocumentError(f"{path} has {size} bytes, more than the {limit} allowed")
    with _open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DocumentError(f"{path} has more than the {limit} bytes allowed")
    return data


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of the regular file at ``path``, read in chunks without blocking."""
    _regular_file_stat(path)
    digest = hashlib.sha256()
    try:
        with _open_regular(path) as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DocumentError(f"{path} cannot be read: {exc.strerror}") from None
    return digest.hexdigest()


def parse_json_object(data: bytes, what: str = "the document") -> dict[str, Any]:
    """Parse ``data`` as one strict UTF-8 JSON object.

    Refuses a byte-order mark, invalid UTF-8, duplicate keys, ``NaN`` and
    ``Infinity``, unpaired surrogate escapes, a top level other than an object, and
    nesting deeper than :data:`MAX_DEPTH`.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise DocumentError(f"{what} starts with a UTF-8 byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{what} is not UTF-8 (invalid byte at offset {exc.start})"
        ) from None
    try:
        content = json.loads(
            text,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_constant=_refuse_constant,
        )
    except DocumentError as exc:
        raise DocumentError(f"{what} {exc}") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise DocumentError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with too many digits
        raise DocumentError(f"{what} holds a value Python refuses: {exc}") from None
    if not isinstance(content, dict):
        raise DocumentError(
            f"{what} must be a JSON object at the top level, "
            f"not {_json_type_name(content)}"
        )
    # json.loads lets an escape such as \ud800 through as a lone surrogate; without
    # any escape of a surrogate in the text, no string can hold one.
    _check_shape(content, what, texts=_SURROGATE_ESCAPE.search(text) is not None)
    return content


def read_json_document(path: Path, what: str = "the document") -> RawDocument:
    """Read the file at ``path`` once and parse it with :func:`parse_json_object`."""
    data = read_regular_file(path, MAX_DOCUMENT_BYTES)
    content = parse_json_object(data, what)
    return RawDocument(path, data, hashlib.sha256(data).hexdigest(), content)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DocumentError(f"repeats the key {key!r} in one object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise DocumentError(f"contains {name}, which JSON does not allow")


def _check_shape(content: Any, what: str, *, texts: bool = True) -> None:
    """Refuse deep nesting and, when ``texts``, unpaired surrogates; iteratively.

    Every value counts for the depth (the top level is 1), a scalar as much as an
    object or array. Only containers are walked: a scalar's depth is its
    container's plus one.
    """
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(content, 1)]
    while stack:
        container, depth = stack.pop()
        if isinstance(container, dict):
            if texts:
                for key in container:
                    _check_text(key, what)
            children: Iterable[Any] = container.values()
        else:
            children = container
        for child in children:
            if depth >= MAX_DEPTH:
                raise DocumentError(f"{what} is nested deeper than {MAX_DEPTH} levels")
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif texts and isinstance(child, str):
                _check_text(child, what)


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DocumentError(
            f"{what} contains an unpaired UTF-16 surrogate escape"
        ) from None


def _json_type_name(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (list, "an array"), (str, "a string")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a number"


def _describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
