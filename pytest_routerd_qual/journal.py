"""The check journal: what the session knows of each test, on disk as it learns it.

A session that is killed, or ended by the watchdog, never writes its result; the
watchdog writes it instead. Without a record of the tests, that result could only
say that the run was ended, not which checks had passed or failed, nor which test
was running at the time. The session therefore appends to ``checks.jsonl`` in the
evidence directory, one JSON object a line:

- ``{"entry": {...}}``: a test's result entry as the session holds it now: every
  collected test once (``not_run``), then again when each attempt of it ends. A
  later line for the same ``nodeid`` replaces an earlier one.
- ``{"running": "NODEID"}``: the test has started; its next ``entry`` line ends it.

Each line is one ``write`` to a file opened for appending, unbuffered, so a line
is on disk before the next test starts. :func:`replay` turns the journal into the
``checks`` of the result. This module imports the standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: The rule of the test that was running when the watchdog ended the run.
RULE_RUNNING = "running when the watchdog ended the run"


class CheckJournal:
    """The session's side: appends lines; never fails a test.

    A journal that cannot be written stops writing and remembers why
    (:attr:`broken`): the session's own result does not depend on it, and only a
    result the watchdog writes would list fewer tests.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.broken: str | None = None
        self._fd: int | None = None
        self._known: set[str] = set()

    def open(self) -> None:
        """Start an empty journal (one left by an earlier session is replaced)."""
        try:
            self._fd = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC,
                0o644,
            )
        except OSError as exc:
            self.broken = f"{self.path} cannot be opened: {exc.strerror}"

    def collected(
        self, nodeids: Iterable[str], entry_of: Callable[[str], dict[str, Any]]
    ) -> None:
        """Record tests as collected, each once however often it is named (every
        xdist worker reports the same collection); ``entry_of`` gives the entry of a
        test not yet recorded."""
        lines = []
        for nodeid in nodeids:
            if nodeid not in self._known:
                self._known.add(nodeid)
                lines.append(_line({"entry": entry_of(nodeid)}))
        if lines:
            self._write(b"".join(lines))

    def running(self, nodeid: str) -> None:
        self._write(b'{"running":%s}\n' % _ENCODER.encode(nodeid).encode())

    def entry(self, entry: dict[str, Any]) -> None:
        self._known.add(entry["nodeid"])
        self._write(_line({"entry": entry}))

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, data)
        except OSError as exc:
            self.broken = f"{self.path} cannot be written: {exc.strerror}"
            self.close()


# One encoder for every line: json.dumps with options builds a new one per call,
# which tripled the cost of a line.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _line(value: dict[str, Any]) -> bytes:
    return (_ENCODER.encode(value) + "\n").encode()


def replay(
    path: Path, *, running_message: str, not_run_rule: str
) -> list[dict[str, Any]]:
    """The result entries the journal at ``path`` describes, in collection order.

    A test still running is an ``error`` of class ``infra_failure`` (the run was
    ended under it) with ``running_message``; a test that never started keeps
    ``not_run``, with ``not_run_rule`` and ``running_message`` saying why. Lines
    that cannot be read (a write cut short) are skipped; a missing journal gives
    no entries.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return []
    entries: dict[str, dict[str, Any]] = {}
    running: set[str] = set()
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        entry = line.get("entry")
        if isinstance(entry, dict) and isinstance(entry.get("nodeid"), str):
            entries[entry["nodeid"]] = entry
            running.discard(entry["nodeid"])
        elif isinstance(line.get("running"), str):
            running.add(line["running"])
            entries.setdefault(line["running"], {"nodeid": line["running"]})
    ended = {
        "outcome": "error",
        "classification": "infra_failure",
        "rule": RULE_RUNNING,
        "message": running_message,
    }
    never_started = {"rule": not_run_rule, "message": running_message}
    return [
        {**entry, **ended}
        if nodeid in running
        else {**entry, **never_started}
        if entry.get("outcome") == "not_run"
        else entry
        for nodeid, entry in entries.items()
    ]
