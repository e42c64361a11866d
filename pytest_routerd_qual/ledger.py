"""The ledger of spent certification manifests.

A run that ends as an ``infra_failure`` found the substrate broken: its certification
no longer describes the lab, and the policy wants the next attempt to reference a new
passing certification. The ledger remembers which manifests were spent so that the
preflight can refuse them.

The ledger is a JSON-lines file that is only ever appended to, under a file lock (two
runs may end at once) and synced to disk after each append. It is evidence: a line
that cannot be read makes the preflight refuse, because skipping it could forget a
spent manifest. This module imports the standard library only; ``filelock`` is
imported when a ledger file exists or is written (a run that never ends as
``infra_failure`` does not pay for it).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .atomic import sync_directory
from .documents import DocumentError, parse_json_object, read_regular_file
from .durations import utc_stamp

SCHEMA_VERSION = "routerd-qual-ledger/v1"
#: How long a reader or writer waits for another run to release the ledger.
LOCK_TIMEOUT = 30.0
#: The largest ledger read; a line is about 250 bytes.
MAX_LEDGER_BYTES = 64 * 1024 * 1024
#: How many corrupt lines are named one by one before the rest are counted.
MAX_NAMED_CORRUPT_LINES = 3


class LedgerError(Exception):
    """The ledger could not be written; the message says why."""


@dataclass(frozen=True)
class SpentEntry:
    """One line of the ledger: a manifest spent by a run."""

    line: int
    manifest_id: str
    sha256: str
    run_id: str
    classification: str
    spent_at: str


class Ledger:
    """The spent-manifest ledger at ``path``, locked through ``path + ".lock"``."""

    def __init__(self, path: Path, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.lock_path = Path(f"{self.path}.lock")
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def spent_reasons(self, manifest_id: str, sha256: str | None = None) -> list[str]:
        """Why the manifest ``manifest_id`` (with these bytes) must not run again.

        Empty when it may run. Otherwise one message per reason: the manifest was
        spent (by ID, or by the SHA-256 of its bytes), or the ledger cannot be read
        or is corrupt at some line, in which case the preflight cannot know and
        refuses.
        """
        return [message for _, message in self.check(manifest_id, sha256)]

    def check(
        self, manifest_id: str, sha256: str | None = None
    ) -> list[tuple[str, str]]:
        """:meth:`spent_reasons` as ``(kind, message)``: ``spent`` when the manifest
        was spent, ``ledger`` when the ledger cannot be trusted."""
        try:
            entries, corrupt = self._read()
        except LedgerError as exc:
            return [("ledger", str(exc))]
        reasons = [("ledger", self._corrupt_message(corrupt))] if corrupt else []
        reasons.extend(
            ("spent", self._spent_message(entry, manifest_id, sha256))
            for entry in entries
            if entry.manifest_id == manifest_id or (sha256 and entry.sha256 == sha256)
        )
        return reasons

    def record_spent(
        self,
        manifest_id: str,
        sha256: str,
        run_id: str,
        classification: str,
        when: datetime,
    ) -> None:
        """Append that ``run_id`` spent the manifest, and sync it to disk.

        :raises LedgerError: when the ledger cannot be written.
        :raises ValueError: for an empty field, which would read back as corrupt.
        """
        for name, value in (
            ("manifest_id", manifest_id),
            ("sha256", sha256),
            ("run_id", run_id),
            ("classification", str(classification)),
        ):
            if not value or "\n" in value:
                raise ValueError(
                    f"a ledger entry needs a one-line {name}, not {value!r}"
                )
        entry = {
            "schemaVersion": SCHEMA_VERSION,
            "manifestId": manifest_id,
            "manifestSha256": sha256,
            "runId": run_id,
            "classification": str(classification),
            "spentAt": utc_stamp(when),
        }
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                self._append(line.encode())
        except OSError as exc:
            raise LedgerError(
                f"the ledger {self.path} cannot be written: {exc}"
            ) from None

    def entries(self) -> list[SpentEntry]:
        """Every readable entry, for reports; corrupt lines are left out here."""
        return self._read()[0]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import filelock  # 18 ms that most sessions never need

        lock = filelock.FileLock(self.lock_path, timeout=self.lock_timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LedgerError(
                f"the ledger {self.path} stayed locked by another run for "
                f"{self.lock_timeout:g}s (lock file {self.lock_path}): try again, or "
                "remove the lock file if no run is ending"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _append(self, data: bytes) -> None:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise LedgerError(f"the ledger {self.path} is not a regular file")
            # A torn last line (a crash mid-append) stays a line of its own, so the
            # preflight refuses on it rather than reading it glued to this entry.
            if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            sync_directory(self.path.parent)

    def _read(self) -> tuple[list[SpentEntry], list[tuple[int, str]]]:
        try:
            self.path.lstat()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise LedgerError(self._unreadable(str(exc))) from None
        try:
            with self._locked():
                data = read_regular_file(self.path, MAX_LEDGER_BYTES)
        except DocumentError as exc:
            raise LedgerError(self._unreadable(str(exc))) from None
        except OSError as exc:
            raise LedgerError(
                self._unreadable(f"its lock cannot be taken: {exc}")
            ) from None
        return _parse_lines(data)

    def _unreadable(self, why: str) -> str:
        return (
            f"the ledger of spent manifests cannot be read ({why}): the preflight "
            "cannot tell whether this manifest was spent; fix the file or its "
            "permissions, or point --qualification-ledger at the right one"
        )

    def _corrupt_message(self, corrupt: list[tuple[int, str]]) -> str:
        named = "; ".join(
            f"line {number}: {why}" for number, why in corrupt[:MAX_NAMED_CORRUPT_LINES]
        )
        more = len(corrupt) - MAX_NAMED_CORRUPT_LINES
        if more > 0:
            named += f"; and {more} more line(s)"
        return (
            f"the ledger {self.path} is corrupt at line {corrupt[0][0]} ({named}): "
            "a spent manifest may be hidden there; restore the ledger or repair the "
            "line by hand, keeping every entry"
        )

    @staticmethod
    def _spent_message(entry: SpentEntry, manifest_id: str, sha256: str | None) -> str:
        what = (
            f"manifest {manifest_id}"
            if entry.manifest_id == manifest_id
            else f"these manifest bytes (sha256 {(sha256 or '')[:12]}) under ID "
            f"{entry.manifest_id}"
        )
        return (
            f"{what} was spent by run {entry.run_id} ({entry.classification}) at "
            f"{entry.spent_at}, ledger line {entry.line}: the next qualification "
            "attempt must reference a new passing certification; recertify the "
            "environment"
        )


def _parse_lines(data: bytes) -> tuple[list[SpentEntry], list[tuple[int, str]]]:
    entries: list[SpentEntry] = []
    corrupt: list[tuple[int, str]] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(_entry(number, parse_json_object(line, "the line")))
        except DocumentError as exc:
            corrupt.append((number, str(exc)))
    return entries, corrupt


def _entry(number: int, content: dict[str, Any]) -> SpentEntry:
    fields = {}
    for key in ("manifestId", "manifestSha256", "runId", "classification", "spentAt"):
        value = content.get(key)
        if not isinstance(value, str) or not value:
            raise DocumentError(f"the line has no {key} string")
        fields[key] = value
    return SpentEntry(
        line=number,
        manifest_id=fields["manifestId"],
        sha256=fields["manifestSha256"],
        run_id=fields["runId"],
        classification=fields["classification"],
        spent_at=fields["spentAt"],
    )
