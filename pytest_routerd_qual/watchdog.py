"""The watchdog of a qualification run: ``python -m pytest_routerd_qual.watchdog``.

The session cannot be trusted to end its own run: it may hang, be killed, or outlive
its certification. The watchdog is a separate process in its own session, started
by :class:`~pytest_routerd_qual.lifecycle.Guard` before the first test. It looks at
the run a few times a second and ends it when:

- ``runner-lost``: the pytest process is gone (or its PID now names another);
- ``certification-expired``: the manifest's ``expiresAt`` has passed;
- ``ttl-expired``: the run has lasted its TTL;
- ``heartbeat-stale``: the heartbeat file has not changed for the stale time.

To end the run it claims the end (so that a finishing session and the watchdog
never both act), records its decision in ``watchdog-abort.json``, terminates the
pytest process group (SIGTERM, then SIGKILL after a grace), runs cleanup and
inventory once, records the manifest as spent, and writes the result document unless
the session wrote one (``result.written``). It exits without acting when the session
asks it to stop (the ``watchdog.stop`` file, or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from .durations import format_seconds, utc_stamp
from .lifecycle import (
    NOT_RUN,
    EvidenceFile,
    WatchdogConfig,
    claim_file,
    descendants,
    end_process_group,
    end_processes,
    process_alive,
    run_cleanup_and_inventory,
    write_json_atomic,
)

RUNNER_LOST = "runner-lost"
CERTIFICATION_EXPIRED = "certification-expired"
TTL_EXPIRED = "ttl-expired"
HEARTBEAT_STALE = "heartbeat-stale"

T = TypeVar("T")


class Watchdog:
    """One watch over one run; :meth:`run` returns the process's exit status."""

    def __init__(self, config: WatchdogConfig) -> None:
        self.config = config
        limits = config.settings.limits
        if limits is None:
            raise ValueError("the watchdog needs certified limits")
        self.ttl = limits.ttl
        self.stale = limits.heartbeat_stale
        started = time.monotonic()
        # Deadlines run on the monotonic clock from here on: a wall-clock jump must
        # neither end a healthy run nor extend a late one.
        self.ttl_deadline = started + (config.ttl_deadline - time.time())
        self.last_heartbeat = self._heartbeat()
        # Staleness counts from the last beat, which the guard made before starting
        # this process; the age is clamped, should the wall clock have jumped.
        age = 0.0
        if self.last_heartbeat is not None:
            age = time.time() - self.last_heartbeat / 1e9
        self.last_progress = started - min(max(age, 0.0), self.stale)
        self.stop_requested = False
        self._wakeup_read, self._wakeup_write = os.pipe()
        for fd in (self._wakeup_read, self._wakeup_write):
            os.set_blocking(fd, False)

    def run(self) -> int:
        """Watch until told to stop or until the run must end, then act."""
        self._install_signal_handlers()
        claim_file(self.config.file(EvidenceFile.WATCHDOG_READY), {"pid": os.getpid()})
        _log(
            f"watching pytest pid {self.config.pytest_pid} for run {self.config.run_id}"
        )
        while True:
            if self._stopping():
                _log("stopped by the session")
                return 0
            decision = self.check()
            if decision is not None:
                return self.act(*decision)
            self._sleep(self.config.settings.poll_interval)

    def check(self) -> tuple[str, str] | None:
        """The reason to end the run now and its detail, or ``None``."""
        config = self.config
        if not process_alive(config.pytest_pid, config.pytest_start_ticks):
            return RUNNER_LOST, f"pytest (pid {config.pytest_pid}) is gone"
        if time.time() >= config.expires_at:
            expired = datetime.fromtimestamp(config.expires_at, timezone.utc)
            return CERTIFICATION_EXPIRED, (
                f"the certification expired at {utc_stamp(expired)} during the run"
            )
        now = time.monotonic()
        if now >= self.ttl_deadline:
            return TTL_EXPIRED, f"the run lasted its TTL of {format_seconds(self.ttl)}"
        heartbeat = self._heartbeat()
        # A heartbeat that vanished is no progress: only a new touch counts.
        if heartbeat is not None and heartbeat != self.last_heartbeat:
            self.last_heartbeat = heartbeat
            self.last_progress = now
        if now - self.last_progress >= self.stale:
            return HEARTBEAT_STALE, (
                f"no progress for {now - self.last_progress:.1f}s (the heartbeat goes "
                f"stale after {format_seconds(self.stale)})"
            )
        return None

    def act(self, reason: str, detail: str) -> int:
        """End the run for ``reason``: see the module docstring."""
        config = self.config
        claim = {
            "by": "watchdog",
            "pid": os.getpid(),
            "reason": reason,
            "at": utc_stamp(),
        }
        if not claim_file(config.file(EvidenceFile.RUN_END), claim):
            _log(f"{reason}, but the session is already ending the run: leaving it")
            return 0
        _log(f"ending the run: {reason}: {detail}")
        record: dict[str, Any] = {
            "reason": reason,
            "at": claim["at"],
            "detail": detail,
            "watchdogPid": os.getpid(),
            "pytestPid": config.pytest_pid,
            "signal": None,
        }
        write_json_atomic(config.file(EvidenceFile.WATCHDOG_ABORT), record)
        ended = _attempt(
            "ending pytest", lambda: self._end_runner(reason == RUNNER_LOST)
        )
        if isinstance(ended, signal.Signals):
            record["signal"] = ended.name
            write_json_atomic(config.file(EvidenceFile.WATCHDOG_ABORT), record)
        exits = _attempt(
            "cleanup and inventory",
            lambda: run_cleanup_and_inventory(
                config.settings, config.run_id, config.evidence_dir
            ),
        )
        cleanup, inventory = exits if isinstance(exits, tuple) else (NOT_RUN, NOT_RUN)
        _log(f"cleanup exit {cleanup}, inventory exit {inventory}")
        _attempt("recording the manifest as spent", self._record_spent)
        driver_exit = (
            -int(ended)
            if isinstance(ended, signal.Signals) and reason != RUNNER_LOST
            else NOT_RUN
        )
        _attempt(
            "writing the result",
            lambda: self._write_result(record, driver_exit, cleanup, inventory),
        )
        return 0

    def _end_runner(self, lost: bool) -> signal.Signals | None:
        config = self.config
        grace = config.settings.kill_grace
        if config.pytest_leads_group:
            if lost and process_alive(config.pytest_pgid):
                # pytest is gone, yet its PID runs: another process reused it, and
                # may lead a group of the same number. Leave it alone.
                return None
            return end_process_group(config.pytest_pgid, grace)
        if lost:
            return None
        # pytest shares its group with whoever started it (a CI agent, a shell):
        # end pytest and its descendants, never that group.
        return end_processes(
            [config.pytest_pid, *descendants(config.pytest_pid)], grace
        )

    def _record_spent(self) -> None:
        from .exitcodes import Classification
        from .ledger import Ledger

        identity = self.config.identity
        Ledger(self.config.settings.ledger_path).record_spent(
            str(identity["manifestId"]),
            str(identity.get("manifestSha256") or "unknown"),
            self.config.run_id,
            Classification.INFRA_FAILURE.value,
            datetime.now(timezone.utc),
        )

    def _write_result(
        self, record: dict[str, Any], driver_exit: int, cleanup: int, inventory: int
    ) -> None:
        config = self.config
        if config.result_path is None:
            return
        if config.file(EvidenceFile.RESULT_WRITTEN).exists():
            _log("the session wrote the result: not writing one")
            return
        import pendulum

        from .classification import RULE_STOPPED
        from .exitcodes import Classification
        from .journal import replay
        from .result import RunIdentity, build_result, write_atomic

        started = pendulum.parse(config.started_at)
        assert isinstance(started, pendulum.DateTime)
        ended = f"the watchdog ended the run: {record['reason']}: {record['detail']}"
        entry = {
            "nodeid": "routerd-qual::watchdog",
            "scope": "lifecycle",
            "outcome": "failed",
            "classification": Classification.INFRA_FAILURE.value,
            "reason": record["reason"],
            "detail": record["detail"],
        }
        document = build_result(
            RunIdentity.from_json(config.identity),
            classification=Classification.INFRA_FAILURE,
            started_at=started,
            finished_at=pendulum.now("UTC"),
            driver_exit=driver_exit,
            checks=[
                *config.checks,
                *replay(
                    config.file(EvidenceFile.CHECKS),
                    running_message=ended,
                    not_run_rule=RULE_STOPPED,
                ),
                entry,
            ],
            cleanup_exit=cleanup,
            inventory_exit=inventory,
            watchdog_pid=os.getpid(),
            watchdog_abort=record,
        )
        write_atomic(config.result_path, document)
        _log(f"wrote the result to {config.result_path}")

    def _heartbeat(self) -> int | None:
        try:
            return self.config.file(EvidenceFile.HEARTBEAT).stat().st_mtime_ns
        except OSError:
            return None

    def _stopping(self) -> bool:
        return (
            self.stop_requested or self.config.file(EvidenceFile.WATCHDOG_STOP).exists()
        )

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, frame: FrameType | None) -> None:
            self.stop_requested = True

        signal.set_wakeup_fd(self._wakeup_write, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, request_stop)
        # A hangup is no request to stop: the watchdog must outlive pytest's end.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on a signal (its byte arrives on the pipe)."""
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select([self._wakeup_read], [], [], seconds)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wakeup_read, 4096)


def _attempt(what: str, step: Callable[[], T]) -> T | None:
    """Run one step of acting; a failure is logged and the next steps still run."""
    try:
        return step()
    except Exception:
        _log(f"{what} failed:\n{traceback.format_exc()}")
        return None


def _log(message: str) -> None:
    sys.stderr.write(f"{utc_stamp()} watchdog[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Read the watchdog's configuration and watch the run."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_routerd_qual.watchdog",
        description="Watch a routerd qualification run and end it when it must end.",
    )
    parser.add_argument("--config", required=True, type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    config = WatchdogConfig.from_json(json.loads(args.config.read_text()))
    try:
        return Watchdog(config).run()
    except Exception:
        _log(f"crashed:\n{traceback.format_exc()}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
