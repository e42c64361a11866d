"""Cleanup, inventory and the watchdog as real processes.

The watchdog runs as it does in a qualification: a separate Python process in its own
session. A dummy ``sleep`` stands in for pytest, so that the watchdog's signals never
reach the pytest running these tests. Every test ends with no process left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_routerd_qual import lifecycle
from pytest_routerd_qual.ledger import Ledger
from pytest_routerd_qual.lifecycle import (
    EvidenceFile,
    Guard,
    GuardError,
    LifecycleCommand,
    LifecycleSettings,
    Limits,
    run_cleanup_and_inventory,
)
from pytest_routerd_qual.result import RunIdentity
from pytest_routerd_qual.schema import packaged_validator

from .processes import running, wait_for

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="needs Linux /proc"
    ),
]

RESULT_SCHEMA = packaged_validator("release-qualification-result.schema.json")
RUN_ID = "run-lab-sim-1"
IDENTITY = RunIdentity(
    manifest_id="cert-lab-sim-1",
    run_id=RUN_ID,
    release="1.4.0",
    manifest_sha256="d" * 64,
    manifest_path="/lab/certification.json",
)
LOGGING_STEP = """
echo "$ROLE $*" >> "$ORDER"
echo "$ROLE says hello"
echo "$ROLE complains" >&2
"""


@dataclass
class Lab:
    """A scratch lab: scripts, evidence directory, ledger, and spawned processes."""

    root: Path
    spawned: list[subprocess.Popen[bytes]]

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def order(self) -> Path:
        return self.root / "order.log"

    @property
    def result_path(self) -> Path:
        return self.root / "result.json"

    def script(self, role: str, body: str = LOGGING_STEP) -> LifecycleCommand:
        path = self.root / f"{role}.sh"
        path.write_text(f'#!/bin/sh\nROLE={role}\nORDER="{self.order}"\n{body}')
        path.chmod(0o755)
        return LifecycleCommand(role, str(path), "test", path)

    def settings(
        self, limits: Limits | None = None, **commands: str
    ) -> LifecycleSettings:
        return LifecycleSettings(
            ledger_path=self.root / "ledger.jsonl",
            rootdir=self.root,
            cleanup=self.script("cleanup", commands.get("cleanup", LOGGING_STEP)),
            inventory=self.script("inventory", commands.get("inventory", LOGGING_STEP)),
            limits=limits or Limits(30, 20, 5, 5),
            kill_grace=0.5,
            poll_interval=0.1,
        )

    def spawn(self, *argv: str, new_session: bool = True) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, start_new_session=new_session)
        self.spawned.append(process)
        return process

    def steps_run(self) -> list[str]:
        return self.order.read_text().splitlines() if self.order.exists() else []

    def guard(
        self,
        settings: LifecycleSettings,
        runner_pid: int,
        *,
        expires_in: timedelta = timedelta(hours=1),
    ) -> Guard:
        guard = Guard.start(
            settings,
            IDENTITY,
            expires_at=datetime.now(timezone.utc) + expires_in,
            result_path=self.result_path,
            manifest_bytes=b'{"manifestId": "cert-lab-sim-1"}\n',
            evidence_dir=self.evidence,
            pytest_pid=runner_pid,
            checks=[{"nodeid": "routerd-qual::certification-preflight"}],
        )
        self.spawned.append(guard.process)
        return guard

    def result(self) -> dict[str, Any]:
        content: dict[str, Any] = json.loads(self.result_path.read_text())
        return content


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab whose spawned processes are ended and reaped whatever the test did."""
    lab = Lab(tmp_path, [])
    yield lab
    for process in lab.spawned:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# ------------------------------------------------------------- cleanup and inventory


def test_cleanup_then_inventory_run_with_the_run_id_and_evidence_dir(lab: Lab) -> None:
    assert run_cleanup_and_inventory(lab.settings(), RUN_ID, lab.evidence) == (0, 0)
    arguments = f"--run-id {RUN_ID} --evidence-dir {lab.evidence}"
    assert lab.steps_run() == [f"cleanup {arguments}", f"inventory {arguments}"]
    for role in ("cleanup", "inventory"):
        assert (lab.evidence / f"{role}.stdout.log").read_text() == (
            f"{role} says hello\n"
        )
        assert (lab.evidence / f"{role}.stderr.log").read_text() == (
            f"{role} complains\n"
        )


def test_only_one_cleanup_runs_for_a_run_id_and_both_callers_see_its_exits(
    lab: Lab,
) -> None:
    settings = lab.settings(cleanup=LOGGING_STEP + "sleep 0.5\nexit 3\n")
    exits: list[tuple[int, int]] = []
    callers = [
        threading.Thread(
            target=lambda: exits.append(
                run_cleanup_and_inventory(settings, RUN_ID, lab.evidence)
            )
        )
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    assert exits == [(3, 0), (3, 0)]
    assert [line.split()[0] for line in lab.steps_run()] == ["cleanup", "inventory"]
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (3, 0)
    assert len(lab.steps_run()) == 2


def test_a_cleanup_that_outlives_its_timeout_is_ended_with_its_group(
    lab: Lab,
) -> None:
    stubborn = (
        LOGGING_STEP
        + 'sh -c \'trap "" TERM; echo $$ > "$0"; sleep 30\' '
        + f"{lab.root / 'child.pid'} &\nsleep 30\n"
    )
    settings = lab.settings(Limits(30, 20, 1, 5), cleanup=stubborn)
    started = time.monotonic()
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (124, 0)
    assert time.monotonic() - started < 5
    child = int((lab.root / "child.pid").read_text())
    assert not running(child)
    log = (lab.evidence / "cleanup.stderr.log").read_text()
    assert log.endswith(
        "routerd-qual: cleanup outlived its 1s timeout; its process group was ended\n"
    )
    assert [line.split()[0] for line in lab.steps_run()] == ["cleanup", "inventory"]


def test_processes_a_cleanup_leaves_behind_are_ended(lab: Lab) -> None:
    leaving = LOGGING_STEP + f"sleep 30 &\necho $! > {lab.root / 'child.pid'}\n"
    settings = lab.settings(cleanup=leaving)
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (0, 0)
    assert not running(int((lab.root / "child.pid").read_text()))
    assert "cleanup left processes behind" in (
        (lab.evidence / "cleanup.stderr.log").read_text()
    )


def test_failures_are_recorded_as_a_shell_would_report_them(lab: Lab) -> None:
    missing = lab.root / "absent.sh"
    settings = replace(
        lab.settings(cleanup="kill -9 $$\n"),
        inventory=LifecycleCommand("inventory", str(missing), "test", missing),
    )
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (137, 127)
    assert "inventory command" in (lab.evidence / "inventory.stderr.log").read_text()


def test_a_cleanup_whose_exits_never_appear_does_not_pass(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "SLACK", 0.0)
    settings = replace(lab.settings(Limits(30, 20, 1, 1)), kill_grace=0.05)
    lab.evidence.mkdir()
    (lab.evidence / EvidenceFile.cleanup_claim(RUN_ID)).write_text("{}")
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (124, 124)
    assert lab.steps_run() == []


def test_a_step_without_a_command_never_ran(lab: Lab) -> None:
    settings = LifecycleSettings(ledger_path=lab.root / "l", rootdir=lab.root)
    assert run_cleanup_and_inventory(settings, RUN_ID, lab.evidence) == (-1, -1)


# ------------------------------------------------------------------------- watchdog


def assert_ended_by_watchdog(
    lab: Lab, guard: Guard, runner: subprocess.Popen[bytes], reason: str
) -> dict[str, Any]:
    """The watchdog ended the run for ``reason``, cleaned up once, wrote the result,
    spent the manifest, and left nothing running."""
    assert guard.process.wait(timeout=20) == 0
    runner.wait(timeout=10)
    result = lab.result()
    RESULT_SCHEMA.validate(result)
    abort = guard.abort_record()
    assert abort is not None
    assert abort["reason"] == reason
    assert result["watchdogAbort"] == abort
    assert result["watchdogPid"] == guard.watchdog_pid
    assert result["classification"] == "infra_failure"
    assert result["status"] == "fail"
    assert (result["runId"], result["certificationManifestId"]) == (
        RUN_ID,
        "cert-lab-sim-1",
    )
    assert (result["cleanupExit"], result["inventoryExit"]) == (0, 0)
    assert [check["nodeid"] for check in result["checks"]] == [
        "routerd-qual::certification-preflight",
        "routerd-qual::watchdog",
    ]
    assert [line.split()[0] for line in lab.steps_run()] == ["cleanup", "inventory"]
    [spent] = Ledger(lab.root / "ledger.jsonl").entries()
    assert (spent.manifest_id, spent.run_id) == ("cert-lab-sim-1", RUN_ID)
    # The session, should it still run, gets the watchdog's exits; nothing reruns.
    assert guard.finish() == (0, 0)
    assert len(lab.steps_run()) == 2
    assert not running(guard.watchdog_pid)
    assert not running(runner.pid)
    assert (lab.evidence / EvidenceFile.MANIFEST).read_bytes() == (
        b'{"manifestId": "cert-lab-sim-1"}\n'
    )
    return result


def test_the_watchdog_ends_a_run_that_outlives_its_ttl(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    started = time.monotonic()
    guard = lab.guard(lab.settings(Limits(1, 20, 5, 5)), runner.pid)
    result = assert_ended_by_watchdog(lab, guard, runner, "ttl-expired")
    assert 1 <= time.monotonic() - started < 5
    assert runner.returncode == -signal.SIGTERM
    assert result["driverExit"] == -signal.SIGTERM
    assert result["watchdogAbort"]["signal"] == "SIGTERM"
    assert result["watchdogAbort"]["detail"] == "the run lasted its TTL of 1s"


def test_the_watchdog_ends_a_run_whose_heartbeat_goes_stale(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(Limits(30, 1, 5, 5)), runner.pid)
    for _ in range(12):  # 1.2s of progress keeps the run alive...
        guard.beat()
        time.sleep(0.1)
    assert guard.watchdog_alive()
    started = time.monotonic()  # ...then none, for longer than 1s.
    result = assert_ended_by_watchdog(lab, guard, runner, "heartbeat-stale")
    assert 0.5 <= time.monotonic() - started < 5
    assert result["watchdogAbort"]["detail"].endswith(
        "(the heartbeat goes stale after 1s)"
    )


def test_the_watchdog_ends_a_run_whose_runner_is_lost(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(), runner.pid)
    os.kill(runner.pid, signal.SIGKILL)  # left a zombie: it must count as gone
    result = assert_ended_by_watchdog(lab, guard, runner, "runner-lost")
    assert result["driverExit"] == -1
    assert result["watchdogAbort"]["signal"] is None


def test_the_watchdog_ends_a_run_whose_certification_expires(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(), runner.pid, expires_in=timedelta(seconds=1))
    result = assert_ended_by_watchdog(lab, guard, runner, "certification-expired")
    assert result["watchdogAbort"]["detail"].startswith("the certification expired at")


def test_a_runner_that_ignores_sigterm_is_killed(lab: Lab) -> None:
    runner = lab.spawn("sh", "-c", "trap '' TERM; sleep 60 & wait")
    time.sleep(0.2)  # let the shell set its trap
    guard = lab.guard(lab.settings(Limits(1, 20, 5, 5)), runner.pid)
    result = assert_ended_by_watchdog(lab, guard, runner, "ttl-expired")
    assert result["driverExit"] == -signal.SIGKILL
    assert result["watchdogAbort"]["signal"] == "SIGKILL"


def test_the_watchdog_spares_the_group_pytest_does_not_lead(lab: Lab) -> None:
    pid_file = lab.root / "runner.pid"
    # A CI agent (the group leader) that started "pytest" (with a child of its own)
    # in its own group: the agent must survive, pytest and its child must not.
    agent = lab.spawn(
        "sh", "-c", f"sh -c 'sleep 60 & wait' & echo $! > {pid_file}; sleep 60"
    )
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    runner_pid = int(pid_file.read_text())
    assert wait_for(lambda: len(_children(runner_pid)) == 1)
    [grandchild] = _children(runner_pid)
    guard = lab.guard(lab.settings(Limits(1, 20, 5, 5)), runner_pid)
    assert guard.process.wait(timeout=20) == 0
    assert lab.result()["driverExit"] == -signal.SIGTERM
    assert not running(runner_pid)
    assert not running(grandchild)
    assert running(agent.pid)


def test_the_watchdog_leaves_the_result_to_a_session_that_wrote_it(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(Limits(1, 20, 5, 5)), runner.pid)
    guard.mark_result_written()
    assert guard.process.wait(timeout=20) == 0
    assert not lab.result_path.exists()
    abort = guard.abort_record()
    assert abort is not None
    assert abort["reason"] == "ttl-expired"


def test_a_session_that_ends_normally_stops_the_watchdog(lab: Lab) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(Limits(30, 1, 5, 5)), runner.pid)
    for _ in range(15):  # 1.5s, longer than the stale time, with progress
        guard.beat()
        time.sleep(0.1)
    started = time.monotonic()
    assert guard.finish() == (0, 0)
    assert time.monotonic() - started < 2
    assert guard.process.returncode == 0
    assert not running(guard.watchdog_pid)
    assert guard.abort_record() is None
    assert running(runner.pid)
    assert not lab.result_path.exists()
    assert Ledger(lab.root / "ledger.jsonl").entries() == []
    assert guard.finish() == (0, 0)
    assert len(lab.steps_run()) == 2
    assert "stopped by the session" in (lab.evidence / "watchdog.log").read_text()


@pytest.mark.parametrize("how", ["sigterm", "stop-file"])
def test_a_watchdog_told_to_stop_exits_without_acting(lab: Lab, how: str) -> None:
    runner = lab.spawn("sleep", "60")
    guard = lab.guard(lab.settings(), runner.pid)
    if how == "sigterm":
        guard.process.send_signal(signal.SIGTERM)
    else:
        (lab.evidence / EvidenceFile.WATCHDOG_STOP).touch()
    assert guard.process.wait(timeout=5) == 0
    assert guard.abort_record() is None
    assert running(runner.pid)
    assert lab.steps_run() == []


def test_a_watchdog_that_cannot_start_is_an_error(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = lab.spawn("sleep", "60")
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(GuardError, match="the watchdog did not start"):
        lab.guard(lab.settings(), runner.pid)


def _children(pid: int) -> list[int]:
    """The running children of ``pid``, from the parent field of ``/proc/*/stat``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in "ZXx":
            children.append(int(entry.name))
    return children
