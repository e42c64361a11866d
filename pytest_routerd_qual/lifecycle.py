"""The lifecycle guard of a qualification run: limits, cleanup, inventory, watchdog.

A qualification run rents a lab. Whatever happens to the run, what it created must
be deleted (cleanup) and what is left must be listed (inventory), exactly once per
run ID; and the run may not outlive its TTL, stall without progress, or outlast its
certification. This module holds the pure parts the session calls:

- :func:`lifecycle_settings_from_config` reads the options once;
- :func:`lifecycle_preflight_rules` adds the lifecycle's refusals to the preflight;
- :func:`run_cleanup_and_inventory` runs both commands under a timeout and a
  once-per-run-ID claim;
- :class:`Guard` starts the watchdog process (:mod:`.watchdog`), feeds it the
  heartbeat, and stops it when the session ends normally.

It imports the standard library only at module level (the watchdog process imports
it and should start fast); the preflight, the ledger and pytest load where needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .atomic import write_bytes_atomic
from .durations import format_seconds, parse_duration, utc_stamp
from .journal import CheckJournal

if TYPE_CHECKING:
    import pendulum
    import pytest

    from .ledger import Ledger
    from .model import CertificationManifest, Lifecycle
    from .preflight import Reason, Request, Rule
    from .result import RunIdentity

#: The exit recorded for a step that never ran (no command configured).
NOT_RUN = -1
#: The exit recorded for a cleanup or inventory ended by its timeout (as timeout(1)).
TIMEOUT_EXIT = 124
#: The exits recorded when a command cannot be started (as a shell reports them).
NOT_EXECUTABLE_EXIT = 126
NOT_FOUND_EXIT = 127
#: The cleanup timeout when neither the option nor the manifest sets one.
DEFAULT_CLEANUP_TIMEOUT = 15 * 60
#: Seconds between SIGTERM and SIGKILL when a process group is ended.
DEFAULT_KILL_GRACE = 5.0
#: Seconds between two looks of the watchdog at the run.
DEFAULT_POLL_INTERVAL = 0.2
#: Seconds a new watchdog has to report that it is watching.
WATCHDOG_START_TIMEOUT = 15.0
#: Extra seconds granted to a watchdog or a cleanup winner beyond its own budget.
SLACK = 10.0


class EvidenceFile:
    """Names of the files a run keeps in its evidence directory."""

    MANIFEST = "certification-manifest.json"
    HEARTBEAT = "heartbeat"
    WATCHDOG_CONFIG = "watchdog-config.json"
    WATCHDOG_LOG = "watchdog.log"
    WATCHDOG_READY = "watchdog.ready"
    WATCHDOG_STOP = "watchdog.stop"
    #: Claimed by whichever ends the run first: the session or the watchdog.
    RUN_END = "run-end.claimed"
    #: The watchdog's decision; its content is the result's ``watchdogAbort``.
    WATCHDOG_ABORT = "watchdog-abort.json"
    #: Written by the session once it has written the result document itself.
    RESULT_WRITTEN = "result.written"
    #: The session's record of each test as it goes (:mod:`.journal`).
    CHECKS = "checks.jsonl"

    @staticmethod
    def cleanup_claim(run_id: str) -> str:
        return f"cleanup.{_safe_run_id(run_id)}.claimed"

    @staticmethod
    def cleanup_exits(run_id: str) -> str:
        return f"cleanup.{_safe_run_id(run_id)}.exits.json"


class LifecycleError(Exception):
    """The lifecycle cannot be guarded as configured; the message says why."""


class GuardError(LifecycleError):
    """The watchdog could not be started; the run would be unguarded."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DurationOption:
    """A duration given by option or ini, with where it came from for messages."""

    seconds: int
    text: str
    origin: str

    def __str__(self) -> str:
        return f"{self.origin} {self.text}"


@dataclass(frozen=True)
class LifecycleCommand:
    """A cleanup or inventory command as configured, and the file it resolves to."""

    role: str
    value: str
    origin: str
    path: Path | None

    def problem(self) -> str | None:
        """Why the command cannot run, or ``None`` when it can."""
        where = f"{self.role} command {self.value!r} (from {self.origin})"
        if self.path is None:
            return f"{where} is not found on PATH"
        if not self.path.exists():
            return f"{where} names {self.path}, which does not exist"
        if not self.path.is_file():
            return f"{where} names {self.path}, which is not a file"
        if not os.access(self.path, os.X_OK):
            return f"{where} names {self.path}, which is not executable"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "value": self.value,
            "origin": self.origin,
            "path": None if self.path is None else str(self.path),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LifecycleCommand:
        path = data.get("path")
        return cls(
            data["role"], data["value"], data["origin"], Path(path) if path else None
        )


def resolve_command(role: str, value: str, origin: str, base: Path) -> LifecycleCommand:
    """A command string: a path (relative to ``base``) if it holds a separator, else
    a name looked up on PATH. The whole string is the executable: no arguments."""
    separators = [os.sep] if os.altsep is None else [os.sep, os.altsep]
    if any(separator in value for separator in separators):
        path = Path(value).expanduser()
        return LifecycleCommand(
            role, value, origin, path if path.is_absolute() else base / path
        )
    found = shutil.which(value)
    return LifecycleCommand(role, value, origin, Path(found) if found else None)


@dataclass(frozen=True)
class Limits:
    """The effective limits of one run, in seconds, once the manifest is known."""

    ttl: int
    heartbeat_stale: int
    cleanup_timeout: int
    inventory_timeout: int


@dataclass(frozen=True)
class LifecycleSettings:
    """Everything the lifecycle guard was told, read once from options and ini.

    ``ttl``, ``heartbeat_stale`` and ``cleanup_timeout`` are the options' values, if
    given; ``limits`` stays ``None`` until :meth:`certified_by` combines them with
    the manifest's ``run.lifecycle``, which the :class:`Guard` requires.
    """

    ledger_path: Path
    rootdir: Path
    evidence_dir: Path | None = None
    cleanup: LifecycleCommand | None = None
    inventory: LifecycleCommand | None = None
    require_lifecycle: bool = False
    ttl: DurationOption | None = None
    heartbeat_stale: DurationOption | None = None
    cleanup_timeout: DurationOption | None = None
    limits: Limits | None = None
    kill_grace: float = DEFAULT_KILL_GRACE
    poll_interval: float = DEFAULT_POLL_INTERVAL

    def evidence_dir_for(self, run_id: str) -> Path:
        """The given evidence directory, else ``.routerd-qual/evidence/RUN_ID`` under
        the rootdir (one per run, so that runs never share a heartbeat)."""
        if self.evidence_dir is not None:
            return self.evidence_dir
        return self.rootdir / ".routerd-qual" / "evidence" / _safe_run_id(run_id)

    def certified_by(self, manifest: CertificationManifest) -> LifecycleSettings:
        """These settings with the run's limits taken from the manifest.

        :raises LifecycleError: when the limits are refused (the preflight rules
            refuse the same manifest first, with the same messages).
        """
        limits, problems = resolve_limits(self, manifest.run.lifecycle)
        if limits is None or problems:
            raise LifecycleError("; ".join(message for _, message in problems))
        return replace(self, limits=limits)

    def timeouts(self) -> tuple[int, int]:
        """The cleanup and inventory timeouts, certified or not."""
        if self.limits is not None:
            return self.limits.cleanup_timeout, self.limits.inventory_timeout
        seconds = self.cleanup_timeout.seconds if self.cleanup_timeout else None
        return (seconds or DEFAULT_CLEANUP_TIMEOUT,) * 2

    def to_json(self) -> dict[str, Any]:
        """What the watchdog process needs of the settings."""

        def duration(option: DurationOption | None) -> dict[str, Any] | None:
            return None if option is None else vars(option).copy()

        return {
            "ledgerPath": str(self.ledger_path),
            "rootdir": str(self.rootdir),
            "evidenceDir": None
            if self.evidence_dir is None
            else str(self.evidence_dir),
            "cleanup": self.cleanup and self.cleanup.to_json(),
            "inventory": self.inventory and self.inventory.to_json(),
            "requireLifecycle": self.require_lifecycle,
            "ttl": duration(self.ttl),
            "heartbeatStale": duration(self.heartbeat_stale),
            "cleanupTimeout": duration(self.cleanup_timeout),
            "limits": None if self.limits is None else vars(self.limits).copy(),
            "killGrace": self.kill_grace,
            "pollInterval": self.poll_interval,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LifecycleSettings:
        def duration(value: dict[str, Any] | None) -> DurationOption | None:
            return None if value is None else DurationOption(**value)

        def command(value: dict[str, Any] | None) -> LifecycleCommand | None:
            return None if value is None else LifecycleCommand.from_json(value)

        return cls(
            ledger_path=Path(data["ledgerPath"]),
            rootdir=Path(data["rootdir"]),
            evidence_dir=Path(data["evidenceDir"]) if data["evidenceDir"] else None,
            cleanup=command(data["cleanup"]),
            inventory=command(data["inventory"]),
            require_lifecycle=bool(data["requireLifecycle"]),
            ttl=duration(data["ttl"]),
            heartbeat_stale=duration(data["heartbeatStale"]),
            cleanup_timeout=duration(data["cleanupTimeout"]),
            limits=Limits(**data["limits"]) if data["limits"] else None,
            kill_grace=float(data["killGrace"]),
            poll_interval=float(data["pollInterval"]),
        )


def lifecycle_settings_from_config(config: pytest.Config) -> LifecycleSettings:
    """Read the lifecycle options and ini keys once (option over ini).

    :raises pytest.UsageError: for a bad duration, naming the option and where the
        value came from.
    """
    from .options import path_value, raw_value

    def duration(option: str) -> DurationOption | None:
        value, origin = raw_value(config, option)
        if value is None or not value.strip():
            return None
        try:
            seconds = parse_duration(value.strip())
        except ValueError as exc:
            import pytest

            raise pytest.UsageError(
                f"{option}: {exc} (the value came from {_where(config, origin)})"
            ) from None
        return DurationOption(seconds, value.strip(), origin)

    def command(option: str, role: str) -> LifecycleCommand | None:
        value, origin = raw_value(config, option)
        if value is None or not value.strip():
            return None
        base = config.invocation_params.dir
        if origin.startswith("ini ") and config.inipath is not None:
            base = config.inipath.parent
        return resolve_command(role, value.strip(), origin, base)

    return LifecycleSettings(
        ledger_path=path_value(config, "--qualification-ledger")
        or config.rootpath / ".routerd-qual" / "ledger.jsonl",
        rootdir=config.rootpath,
        evidence_dir=path_value(config, "--qualification-evidence-dir"),
        cleanup=command("--qualification-cleanup-command", "cleanup"),
        inventory=command("--qualification-inventory-command", "inventory"),
        require_lifecycle=bool(config.getini("qualification_require_lifecycle")),
        ttl=duration("--qualification-ttl"),
        heartbeat_stale=duration("--qualification-heartbeat-stale"),
        cleanup_timeout=duration("--qualification-cleanup-timeout"),
    )


def _where(config: pytest.Config, origin: str) -> str:
    if origin.startswith("ini "):
        return f"the ini key {origin.removeprefix('ini ')} in {config.inipath}"
    if origin.startswith("$"):
        return f"the environment variable {origin[1:]}"
    return "the command line"


# ----------------------------------------------------------------- preflight rules


def resolve_limits(
    settings: LifecycleSettings, lifecycle: Lifecycle
) -> tuple[Limits | None, list[tuple[str, str]]]:
    """The run's limits from the options and the certified lifecycle, and every
    ``(rule, message)`` that refuses them. Options only shorten what was certified."""
    problems: list[tuple[str, str]] = []
    certified: dict[str, int] = {}
    for name, text in (
        ("ttl", lifecycle.ttl),
        ("heartbeatStale", lifecycle.heartbeat_stale),
        ("cleanupTimeout", lifecycle.cleanup_timeout),
        ("inventoryTimeout", lifecycle.inventory_timeout),
    ):
        if text is None:
            continue
        try:
            certified[name] = parse_duration(text)
        except ValueError as exc:
            problems.append(
                (
                    "lifecycle-limit",
                    f"the manifest's run.lifecycle.{name}: {exc}; recertify",
                )
            )
    ttl = _shortened(settings.ttl, "ttl", lifecycle.ttl, certified, problems)
    stale = _shortened(
        settings.heartbeat_stale,
        "heartbeatStale",
        lifecycle.heartbeat_stale,
        certified,
        problems,
    )
    if ttl is not None and stale is not None and stale >= ttl:
        problems.append(
            (
                "lifecycle-limit",
                f"the heartbeat stale time {format_seconds(stale)} is not shorter than "
                f"the TTL {format_seconds(ttl)}: a stalled run would only be caught by "
                "the TTL; pass a shorter --qualification-heartbeat-stale",
            )
        )
    # One option sets both timeouts; each may only shorten what was certified.
    cleanup = _timeout(
        settings.cleanup_timeout,
        "cleanupTimeout",
        lifecycle.cleanup_timeout,
        certified,
        problems,
        default=DEFAULT_CLEANUP_TIMEOUT,
    )
    inventory = _timeout(
        settings.cleanup_timeout,
        "inventoryTimeout",
        lifecycle.inventory_timeout,
        certified,
        problems,
        default=cleanup,
    )
    if ttl is None or stale is None:
        return None, problems
    return Limits(ttl, stale, cleanup, inventory), problems


def _timeout(
    option: DurationOption | None,
    name: str,
    text: str | None,
    certified: dict[str, int],
    problems: list[tuple[str, str]],
    *,
    default: int,
) -> int:
    """A step's timeout: the option's, at most the certified one; else the
    certified one; else ``default``."""
    if text is not None and name in certified:
        return _shortened(option, name, text, certified, problems) or default
    return option.seconds if option else default


def _shortened(
    option: DurationOption | None,
    name: str,
    text: str,
    certified: dict[str, int],
    problems: list[tuple[str, str]],
) -> int | None:
    if name not in certified:
        return None
    if option is None:
        return certified[name]
    if option.seconds > certified[name]:
        problems.append(
            (
                "lifecycle-limit",
                f"{option} is longer than the certified run.lifecycle.{name} {text}: "
                f"an option may only shorten it; pass at most {text} or drop it",
            )
        )
    return min(option.seconds, certified[name])


def lifecycle_preflight_rules(
    settings: LifecycleSettings, ledger: Ledger | None = None
) -> list[Rule]:
    """The lifecycle's preflight rules, for ``run_preflight(extra_rules=...)``.

    They refuse: limits an option would extend, a heartbeat stale time not shorter
    than the TTL, a certification that expires before the TTL would end, a spent
    manifest (or an unreadable ledger), unusable cleanup or inventory commands, and
    a run ID whose cleanup already ran.
    """
    if ledger is None:
        from .ledger import Ledger

        ledger = Ledger(settings.ledger_path)
    spent_ledger = ledger

    def limits_rule(
        request: Request,
        manifest: CertificationManifest,
        now: pendulum.DateTime,
        sha256: str,
    ) -> Iterator[Reason]:
        yield from _limit_reasons(settings, manifest, now)

    def spent_rule(
        request: Request,
        manifest: CertificationManifest,
        now: pendulum.DateTime,
        sha256: str,
    ) -> Iterator[Reason]:
        yield from _spent_reasons(spent_ledger, manifest, sha256)

    def commands_rule(
        request: Request,
        manifest: CertificationManifest,
        now: pendulum.DateTime,
        sha256: str,
    ) -> Iterator[Reason]:
        yield from _command_reasons(settings)

    def reuse_rule(
        request: Request,
        manifest: CertificationManifest,
        now: pendulum.DateTime,
        sha256: str,
    ) -> Iterator[Reason]:
        yield from _reuse_reasons(settings, manifest)

    return [limits_rule, spent_rule, commands_rule, reuse_rule]


def _limit_reasons(
    settings: LifecycleSettings, manifest: CertificationManifest, now: pendulum.DateTime
) -> Iterator[Reason]:
    from .preflight import Reason, format_duration

    limits, problems = resolve_limits(settings, manifest.run.lifecycle)
    for rule, message in problems:
        yield Reason(rule, message)
    if limits is None or manifest.expires_at <= now:
        return  # An expired manifest is refused by the preflight's own rule.
    left = int((manifest.expires_at - now).total_seconds())
    expires = manifest.expires_at.in_timezone("UTC").format("YYYY-MM-DD[T]HH:mm:ss[Z]")
    if left < limits.ttl:
        yield Reason(
            "lifecycle-expiry",
            f"the certification expires at {expires}, in "
            f"{format_duration(left)}, before the run's TTL of "
            f"{format_seconds(limits.ttl)} would end: a run may not outlive its "
            "certification; recertify, or pass --qualification-ttl "
            f"{_at_most(left)} or less",
        )


def _at_most(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds >= 60 else f"{max(seconds, 1)}s"


def _spent_reasons(
    ledger: Ledger, manifest: CertificationManifest, sha256: str
) -> Iterator[Reason]:
    from .preflight import Reason

    for rule, message in ledger.check(manifest.manifest_id, sha256):
        yield Reason(rule, message)


def _command_reasons(settings: LifecycleSettings) -> Iterator[Reason]:
    from .preflight import Reason

    for role, command in (
        ("cleanup", settings.cleanup),
        ("inventory", settings.inventory),
    ):
        if command is None:
            if settings.require_lifecycle:
                yield Reason(
                    "lifecycle-command",
                    f"qualification_require_lifecycle is set but no {role} command "
                    f"was given: pass --qualification-{role}-command CMD (ini "
                    f"qualification_{role}_command)",
                )
            continue
        # A given command that cannot run would fail after the run and spend the
        # certification: refuse it now, whether or not the suite requires one.
        problem = command.problem()
        if problem is not None:
            yield Reason(
                "lifecycle-command",
                f"{problem}: fix the path or its mode (chmod +x) before the run starts",
            )


def _reuse_reasons(
    settings: LifecycleSettings, manifest: CertificationManifest
) -> Iterator[Reason]:
    from .preflight import Reason

    run_id = manifest.run.run_id
    claim = settings.evidence_dir_for(run_id) / EvidenceFile.cleanup_claim(run_id)
    if claim.exists():
        yield Reason(
            "run-reused",
            f"run {run_id} already ran and its cleanup was claimed ({claim}): a run "
            "ID is cleaned up once; certify a new run",
        )


# ------------------------------------------------------------------------ processes


@dataclass(frozen=True)
class ProcessInfo:
    """What ``/proc/PID/stat`` says of a process."""

    pid: int
    state: str
    ppid: int
    pgid: int
    start_ticks: int

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")


def process_info(pid: int) -> ProcessInfo | None:
    """The process ``pid`` as ``/proc`` shows it, or ``None`` if it is gone (or there
    is no ``/proc``)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcessInfo(
            pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19])
        )
    except (IndexError, ValueError):
        return None


def _proc_available() -> bool:
    return Path("/proc/self/stat").exists()


def _all_processes() -> list[ProcessInfo]:
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                info = process_info(int(entry.name))
                if info is not None:
                    found.append(info)
    return found


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not), and is still the process that
    started at ``start_ticks`` if given (its PID was not reused)."""
    if _proc_available():
        info = process_info(pid)
        if info is None or not info.alive:
            return False
        return start_ticks is None or info.start_ticks == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in the process group."""
    if _proc_available():
        return any(info.pgid == pgid and info.alive for info in _all_processes())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[int]:
    """The live descendants of ``pid``, children first (Linux only; else none)."""
    children: dict[int, list[int]] = {}
    for info in _all_processes():
        if info.alive:
            children.setdefault(info.ppid, []).append(info.pid)
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            if child not in found and child != pid:
                found.append(child)
                queue.append(child)
    return found


def end_process_group(pgid: int, grace: float) -> signal.Signals | None:
    """End every process of the group: SIGTERM, then SIGKILL after ``grace``.

    Returns the signal that ended the last of them, or ``None`` if none was left.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise LifecycleError(f"refusing to end process group {pgid}: it is ours")
    return _end(lambda sig: _signal_group(pgid, sig), lambda: group_alive(pgid), grace)


def end_processes(pids: Sequence[int], grace: float) -> signal.Signals | None:
    """End the given processes: SIGTERM, then SIGKILL after ``grace``."""
    own = os.getpid()
    targets = [pid for pid in pids if pid > 1 and pid != own]

    def send(sig: signal.Signals) -> None:
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    return _end(send, lambda: any(process_alive(pid) for pid in targets), grace)


def _end(
    send: Callable[[signal.Signals], None], alive: Callable[[], bool], grace: float
) -> signal.Signals | None:
    if not alive():
        return None
    send(signal.SIGTERM)
    if _wait_until(lambda: not alive(), grace):
        return signal.SIGTERM
    send(signal.SIGKILL)
    _wait_until(lambda: not alive(), SLACK)
    return signal.SIGKILL


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_until(
    condition: Callable[[], bool], timeout: float, step: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


# ------------------------------------------------------------- cleanup and inventory


def run_cleanup_and_inventory(
    settings: LifecycleSettings, run_id: str, evidence_dir: Path
) -> tuple[int, int]:
    """Run the cleanup, then the inventory, once for ``run_id``; their exits.

    Whoever creates the claim file in ``evidence_dir`` first (the session or the
    watchdog) runs both commands and records their exits; a later caller waits for
    those exits and returns them. A step with no command is ``-1`` (never ran); a
    step that outlives its timeout is ended with its process group and is ``124``;
    a command that cannot start is ``126`` or ``127``; a death by signal N is
    ``128 + N``. When the winner's exits do not appear within its budget, the
    loser returns ``124`` for both: an unknown cleanup must not pass.
    """
    evidence_dir.mkdir(parents=True, exist_ok=True)
    exits_path = evidence_dir / EvidenceFile.cleanup_exits(run_id)
    claim = {"pid": os.getpid(), "at": utc_stamp()}
    if not claim_file(evidence_dir / EvidenceFile.cleanup_claim(run_id), claim):
        return _await_exits(exits_path, _cleanup_budget(settings))
    cleanup_timeout, inventory_timeout = settings.timeouts()
    exits = (
        _run_step(
            settings.cleanup, run_id, evidence_dir, cleanup_timeout, settings.kill_grace
        ),
        _run_step(
            settings.inventory,
            run_id,
            evidence_dir,
            inventory_timeout,
            settings.kill_grace,
        ),
    )
    write_json_atomic(
        exits_path, {"cleanupExit": exits[0], "inventoryExit": exits[1], **claim}
    )
    return exits


def lifecycle_failed(cleanup_exit: int, inventory_exit: int) -> bool:
    """Whether the exits make the run an ``infra_failure``: any that ran and failed."""
    return any(code not in (0, NOT_RUN) for code in (cleanup_exit, inventory_exit))


def _cleanup_budget(settings: LifecycleSettings) -> float:
    return sum(settings.timeouts()) + 4 * settings.kill_grace + SLACK


def _await_exits(path: Path, budget: float) -> tuple[int, int]:
    recorded: dict[str, Any] = {}

    def ready() -> bool:
        with contextlib.suppress(OSError, ValueError):
            recorded.update(json.loads(path.read_text()))
        return "cleanupExit" in recorded

    if not _wait_until(ready, budget, step=0.1):
        return TIMEOUT_EXIT, TIMEOUT_EXIT
    return int(recorded["cleanupExit"]), int(recorded["inventoryExit"])


def _run_step(
    command: LifecycleCommand | None,
    run_id: str,
    evidence_dir: Path,
    timeout: int,
    grace: float,
) -> int:
    if command is None:
        return NOT_RUN
    role = command.role
    argv = [
        str(command.path or command.value),
        "--run-id",
        run_id,
        "--evidence-dir",
        str(evidence_dir),
    ]
    with (
        (evidence_dir / f"{role}.stdout.log").open("ab") as out,
        (evidence_dir / f"{role}.stderr.log").open("ab") as err,
    ):
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            _note(err, f"{role} command {argv[0]} could not start: {exc}")
            return (
                NOT_FOUND_EXIT
                if isinstance(exc, FileNotFoundError)
                else NOT_EXECUTABLE_EXIT
            )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            end_process_group(process.pid, grace)
            process.wait()
            _note(
                err,
                f"{role} outlived its {format_seconds(timeout)} timeout; "
                "its process group was ended",
            )
            return TIMEOUT_EXIT
        # What the command left running in its group would outlive the run.
        if end_process_group(process.pid, grace) is not None:
            _note(err, f"{role} left processes behind; they were ended")
    return code if code >= 0 else 128 - code


def _note(stream: IO[bytes], message: str) -> None:
    stream.write(f"\nrouterd-qual: {message}\n".encode())
    stream.flush()


# ------------------------------------------------------------------------ small files


def claim_file(path: Path, content: dict[str, Any]) -> bool:
    """Create ``path`` exclusively with ``content``; ``False`` if it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def write_json_atomic(path: Path, content: Any) -> None:
    """Write ``content`` as JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(content, indent=2) + "\n").encode())


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` if it is missing or unreadable."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _safe_run_id(run_id: str) -> str:
    if not run_id or run_id in (".", "..") or "/" in run_id or "\0" in run_id:
        raise LifecycleError(f"run ID {run_id!r} cannot name a file")
    return run_id


# ---------------------------------------------------------------------------- guard


@dataclass(frozen=True)
class WatchdogConfig:
    """Everything the watchdog process is told, written as JSON next to its log."""

    settings: LifecycleSettings
    identity: dict[str, Any]
    evidence_dir: Path
    result_path: Path | None
    pytest_pid: int
    pytest_pgid: int
    pytest_start_ticks: int | None
    started_at: str
    ttl_deadline: float
    expires_at: float
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.identity["runId"])

    @property
    def pytest_leads_group(self) -> bool:
        return self.pytest_pgid == self.pytest_pid

    def file(self, name: str) -> Path:
        return self.evidence_dir / name

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "identity": self.identity,
            "evidenceDir": str(self.evidence_dir),
            "resultPath": None if self.result_path is None else str(self.result_path),
            "pytestPid": self.pytest_pid,
            "pytestPgid": self.pytest_pgid,
            "pytestStartTicks": self.pytest_start_ticks,
            "startedAt": self.started_at,
            "ttlDeadline": self.ttl_deadline,
            "expiresAt": self.expires_at,
            "checks": self.checks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatchdogConfig:
        return cls(
            settings=LifecycleSettings.from_json(data["settings"]),
            identity=dict(data["identity"]),
            evidence_dir=Path(data["evidenceDir"]),
            result_path=Path(data["resultPath"]) if data["resultPath"] else None,
            pytest_pid=int(data["pytestPid"]),
            pytest_pgid=int(data["pytestPgid"]),
            pytest_start_ticks=data["pytestStartTicks"],
            started_at=str(data["startedAt"]),
            ttl_deadline=float(data["ttlDeadline"]),
            expires_at=float(data["expiresAt"]),
            checks=list(data["checks"]),
        )


class Guard:
    """The session's side of the lifecycle guard of one run.

    :meth:`start` leaves a copy of the manifest and a heartbeat in the evidence
    directory and starts the watchdog (:mod:`.watchdog`) in its own session, so that
    it survives the end of pytest's process group. The session calls :meth:`beat`
    on each test report and :meth:`finish` when it ends, whatever its outcome:
    ``finish`` claims the end of the run (unless the watchdog claimed it first),
    stops the watchdog, then runs cleanup and inventory once. The watchdog acts only
    if the session cannot: TTL, stale heartbeat, lost runner, expired certification.
    """

    def __init__(
        self,
        config: WatchdogConfig,
        process: subprocess.Popen[bytes],
    ) -> None:
        self.config = config
        self.process = process
        self._beat_every = (
            min(1.0, config.settings.limits.heartbeat_stale / 4)
            if config.settings.limits
            else 1.0
        )
        self._last_beat = time.monotonic()
        self._exits: tuple[int, int] | None = None
        self._ready = False
        #: What the session knows of each test, for a result the watchdog writes.
        self.journal = CheckJournal(config.file(EvidenceFile.CHECKS))

    @property
    def watchdog_pid(self) -> int:
        return self.process.pid

    @property
    def evidence_dir(self) -> Path:
        return self.config.evidence_dir

    @classmethod
    def start(
        cls,
        settings: LifecycleSettings,
        identity: RunIdentity,
        *,
        expires_at: datetime,
        result_path: Path | None,
        manifest_bytes: bytes,
        evidence_dir: Path | None = None,
        pytest_pid: int | None = None,
        started_at: datetime | None = None,
        checks: Sequence[dict[str, Any]] = (),
        wait: bool = True,
    ) -> Guard:
        """Start guarding the run; see the class docstring.

        ``settings`` must be certified (:meth:`LifecycleSettings.certified_by`).
        ``checks`` are put first in the result if the watchdog has to write it (the
        preflight's entry). The TTL counts from ``started_at`` (default: now).

        :raises GuardError: when the watchdog does not report that it is watching.
        """
        if settings.limits is None:
            raise LifecycleError("Guard.start needs settings.certified_by(manifest)")
        pid = os.getpid() if pytest_pid is None else pytest_pid
        directory = (
            evidence_dir or settings.evidence_dir_for(identity.run_id)
        ).absolute()
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (
            EvidenceFile.WATCHDOG_READY,
            EvidenceFile.WATCHDOG_STOP,
            EvidenceFile.RUN_END,
            EvidenceFile.WATCHDOG_ABORT,
            EvidenceFile.RESULT_WRITTEN,
        ):
            (directory / stale).unlink(missing_ok=True)
        write_bytes_atomic(directory / EvidenceFile.MANIFEST, manifest_bytes)
        (directory / EvidenceFile.HEARTBEAT).touch()
        start = started_at or datetime.now(timezone.utc)
        info = process_info(pid)
        config = WatchdogConfig(
            settings=settings,
            identity=identity.to_json(),
            evidence_dir=directory,
            result_path=result_path and Path(result_path).absolute(),
            pytest_pid=pid,
            pytest_pgid=os.getpgid(pid),
            pytest_start_ticks=info.start_ticks if info else None,
            started_at=utc_stamp(start),
            ttl_deadline=start.timestamp() + settings.limits.ttl,
            expires_at=expires_at.timestamp(),
            checks=list(checks),
        )
        write_json_atomic(config.file(EvidenceFile.WATCHDOG_CONFIG), config.to_json())
        guard = cls(config, _spawn_watchdog(config))
        guard.journal.open()
        if wait:
            guard.wait_ready()
        return guard

    def wait_ready(self) -> None:
        """Block until the watchdog watches (once); :class:`GuardError` if it cannot.

        :meth:`start` with ``wait=False`` lets the watchdog start while pytest
        collects; the session calls this before the first test.
        """
        if not self._ready:
            _await_watchdog(self.config, self.process)
            self._ready = True

    def beat(self) -> None:
        """Tell the watchdog the run progresses; cheap enough for every report."""
        now = time.monotonic()
        if now - self._last_beat < self._beat_every:
            return
        self._last_beat = now
        stamp = time.time_ns()
        # A failed touch is not an error of the test: the watchdog sees the
        # heartbeat go stale and ends the run, which is the safe outcome.
        with contextlib.suppress(OSError):
            os.utime(self.config.file(EvidenceFile.HEARTBEAT), ns=(stamp, stamp))

    def watchdog_alive(self) -> bool:
        """Whether the watchdog still watches (``False`` once it exited)."""
        return self.process.poll() is None

    def finish(self) -> tuple[int, int]:
        """End the run: stop the watchdog, then cleanup and inventory; their exits.

        Idempotent. If the watchdog claimed the end of the run first, this waits for
        it to finish acting and returns the exits it recorded.
        """
        if self._exits is None:
            self.journal.close()
            claimed = claim_file(
                self.config.file(EvidenceFile.RUN_END),
                {"by": "session", "pid": os.getpid(), "at": utc_stamp()},
            )
            self._stop_watchdog(acting=not claimed)
            self._exits = run_cleanup_and_inventory(
                self.config.settings, self.config.run_id, self.evidence_dir
            )
        return self._exits

    def release_run_id(self) -> None:
        """Let a later session use this run ID again: no test of this one started.

        The claim is renamed, not deleted: the evidence of this cleanup stays.
        """
        run_id = self.config.run_id
        claim = self.config.file(EvidenceFile.cleanup_claim(run_id))
        with contextlib.suppress(FileNotFoundError):
            claim.replace(claim.with_name(f"{claim.name}.released-{time.time_ns()}"))
        exits = self.config.file(EvidenceFile.cleanup_exits(run_id))
        with contextlib.suppress(FileNotFoundError):
            exits.replace(exits.with_name(f"{exits.name}.released-{time.time_ns()}"))

    def abort_record(self) -> dict[str, Any] | None:
        """The watchdog's ``watchdogAbort`` object if it ended the run, or ``None``.

        Put it in the result's ``watchdogAbort`` (with ``watchdogPid``), and
        classify the run ``infra_failure``: the watchdog ended it.
        """
        return read_json(self.config.file(EvidenceFile.WATCHDOG_ABORT))

    def mark_result_written(self) -> None:
        """Tell the watchdog the session wrote the result, so it writes none."""
        self.config.file(EvidenceFile.RESULT_WRITTEN).touch()

    def _stop_watchdog(self, *, acting: bool) -> None:
        self.config.file(EvidenceFile.WATCHDOG_STOP).touch()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        budget = watchdog_budget(self.config.settings) if acting else SLACK
        try:
            self.process.wait(budget)
        except subprocess.TimeoutExpired:
            # Its own session: the group is the watchdog and what it started.
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()


def watchdog_budget(settings: LifecycleSettings) -> float:
    """The longest a watchdog that acts may take: end pytest, clean up, record."""
    from .ledger import LOCK_TIMEOUT

    return 2 * settings.kill_grace + _cleanup_budget(settings) + LOCK_TIMEOUT + SLACK


def _spawn_watchdog(config: WatchdogConfig) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "pytest_routerd_qual.watchdog",
        "--config",
        str(config.file(EvidenceFile.WATCHDOG_CONFIG)),
    ]
    with config.file(EvidenceFile.WATCHDOG_LOG).open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _await_watchdog(config: WatchdogConfig, process: subprocess.Popen[bytes]) -> None:
    """Return once the watchdog reports that it watches; else end it and raise."""
    ready = config.file(EvidenceFile.WATCHDOG_READY)
    _wait_until(
        lambda: ready.exists() or process.poll() is not None, WATCHDOG_START_TIMEOUT
    )
    if ready.exists() and process.poll() is None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
    raise GuardError(
        f"the watchdog did not start (exit {process.returncode}); see "
        f"{config.file(EvidenceFile.WATCHDOG_LOG)}: the run would be unguarded"
    )
