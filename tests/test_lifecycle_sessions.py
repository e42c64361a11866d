"""The lifecycle guard end to end: real qualification sessions in subprocesses.

Each scenario runs pytest in a child process, because the guard's watchdog ends
pytest with signals and outlives it. The cleanup and inventory commands are small
shell scripts that log their arguments with a timestamp to ``steps.log``, where the
suite's tests and its session fixture log too, so that the order of everything is
one file. Every test ends with no watchdog, cleanup or inner pytest left running.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.journal import replay
from pytest_routerd_qual.ledger import Ledger
from pytest_routerd_qual.lifecycle import EvidenceFile
from pytest_routerd_qual.testing import SampleCertification

from .processes import running, wait_for
from .test_classification import checks_by_id, load_result

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="needs Linux /proc"
    ),
]

#: Hypothesis's plugin imports hypothesis at the end of every session, which costs
#: seconds where bytecode is not cached; the inner suites do not use it.
INNER_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

#: Logs every step of the run to ``steps.log`` next to it: ``lab("what")``.
CONFTEST = """
import time
from pathlib import Path

import pytest

STEPS = Path(__file__).parent / "steps.log"


def log(what):
    with STEPS.open("a") as handle:
        handle.write(f"{time.time():.6f} {what}\\n")


@pytest.fixture(scope="session")
def lab():
    yield log
    log("lab-released")
"""

PASSING_SUITE = """
import pytest

@pytest.mark.qualification_check("readiness")
def test_routerd_reports_ready(lab):
    lab("test-ready")

@pytest.mark.qualification_check("connectivity_matrix")
def test_matrix_pair_reaches(lab):
    lab("test-matrix")
    assert OUTCOME == "passed", "leaf-b:client-a: no route"

OUTCOME = "passed"
"""

HANGING_SUITE = """
import time

import pytest

@pytest.mark.substrate
def test_qga_answers(lab):
    pass

@pytest.mark.qualification_check("readiness")
def test_routerd_reports_ready(lab):
    lab("running")
    time.sleep(60)

@pytest.mark.qualification_check("connectivity_matrix")
def test_matrix_pair_reaches(lab):
    pass
"""
#: What the watchdog's result says of each test of HANGING_SUITE.
HUNG_CHECKS = [
    ("test_suite.py::test_qga_answers", "passed", "none", None),
    (
        "test_suite.py::test_routerd_reports_ready",
        "error",
        "infra_failure",
        "running when the watchdog ended the run",
    ),
    (
        "test_suite.py::test_matrix_pair_reaches",
        "not_run",
        "none",
        "not run: the run stopped at an infra failure",
    ),
]

SHORT_TESTS_SUITE = """
import time

import pytest

@pytest.mark.qualification_check("connectivity_matrix")
@pytest.mark.parametrize("pair", range(40))
def test_matrix_pair_reaches(lab, pair):
    lab(f"test {pair}")
    time.sleep(0.3)
"""

DEFECT_SUITE = """
import pytest
from pytest_routerd_qual import SubstrateDefect

@pytest.mark.substrate
def test_qga_answers(lab):
    raise SubstrateDefect("qga", "guest agent on pve-leaf-a stopped answering")
"""

REPAIR_SUITE = """
import pytest
from pytest_routerd_qual import repair_action

@repair_action
def regenerate_config_disk(lab, vm):
    lab(f"repaired-{vm}")

@pytest.mark.qualification_check("readiness")
def test_routerd_reports_ready_after_a_repair(lab):
    regenerate_config_disk(lab, "pve-leaf-a")
    lab("test-repaired")

@pytest.mark.qualification_check("readiness")
def test_status_api(lab):
    lab("test-status")
"""

#: The lifecycle step: logs its role and argv, writes to both of its logs.
STEP = """#!/bin/sh
printf '%s %s %s\\n' "$(date +%s.%N)" {role} "$0 $*" >> "{steps}"
echo "{role} ran"
echo "{role} notes" >&2
"""


class Step(NamedTuple):
    """One line of ``steps.log``: when, who, and with which arguments."""

    at: float
    what: str
    args: str


def processes_mentioning(*paths: Path) -> dict[int, str]:
    """Live processes whose command line names one of ``paths``, by PID."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if any(str(path) in cmdline for path in paths) and running(int(entry.name)):
            found[int(entry.name)] = cmdline
    return found


@dataclass
class Lab:
    """A qualification suite in ``pytester`` with lifecycle scripts and its files."""

    pytester: pytest.Pytester
    sample: SampleCertification

    @property
    def root(self) -> Path:
        return self.pytester.path

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def result_path(self) -> Path:
        return self.root / "result.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def temporary_files(self) -> list[Path]:
        """What the inner sessions left in their ``TMPDIR``."""
        return list((self.root / "tmp").iterdir())

    @property
    def run_id(self) -> str:
        return str(self.sample.manifest["run"]["runId"])

    @property
    def manifest_id(self) -> str:
        return str(self.sample.manifest["manifestId"])

    def step(self, role: str, body: str = "") -> Path:
        """(Re)write the ``role`` script: log, then ``body``."""
        path = self.root / f"{role}.sh"
        path.write_text(STEP.format(role=role, steps=self.root / "steps.log") + body)
        path.chmod(0o755)
        return path

    def args(self, *extra: str, lifecycle: bool = True) -> list[str]:
        args = [
            *INNER_OPTIONS,
            *self.sample.pytest_args(),
            f"--qualification-result={self.result_path}",
            f"--qualification-evidence-dir={self.evidence}",
            f"--qualification-ledger={self.ledger}",
        ]
        if lifecycle:
            args += [
                f"--qualification-cleanup-command={self.root / 'cleanup.sh'}",
                f"--qualification-inventory-command={self.root / 'inventory.sh'}",
            ]
        return [*args, *extra]

    def run(self, *extra: str, lifecycle: bool = True) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(
            *self.args(*extra, lifecycle=lifecycle), timeout=45
        )

    def steps(self) -> list[Step]:
        path = self.root / "steps.log"
        if not path.exists():
            return []
        lines = [line.split(" ", 2) for line in path.read_text().splitlines()]
        return [Step(float(at), what, " ".join(rest)) for at, what, *rest in lines]

    def step_names(self) -> list[str]:
        return [step.what for step in self.steps()]

    def lifecycle_steps(self) -> list[Step]:
        return [s for s in self.steps() if s.what in ("cleanup", "inventory")]

    def result(self) -> dict[str, Any]:
        return load_result(self.result_path)

    def watchdogs(self) -> dict[int, str]:
        return {
            pid: cmdline
            for pid, cmdline in processes_mentioning(self.root).items()
            if "pytest_routerd_qual.watchdog" in cmdline
        }

    def await_watchdog_result(self) -> dict[str, Any]:
        """The result the watchdog wrote once it finished acting."""
        assert wait_for(lambda: not self.watchdogs(), 30), self.watchdogs()
        return self.result()

    def assert_cleaned_up_once_after(self, last: str, *or_: str) -> None:
        """Cleanup then inventory ran once each, as the lifecycle commands are run,
        after the step ``last`` (or one of ``or_``, where processes race)."""
        expected = f"--run-id {self.run_id} --evidence-dir {self.evidence}"
        steps = self.steps()
        names = [step.what for step in steps]
        assert names.count("cleanup") == names.count("inventory") == 1
        assert names[-2:] == ["cleanup", "inventory"]
        assert names[-3] in (last, *or_)
        cleanup, inventory = steps[-2:]
        assert cleanup.args == f"{self.root / 'cleanup.sh'} {expected}"
        assert inventory.args == f"{self.root / 'inventory.sh'} {expected}"
        assert [step.at for step in steps] == sorted(step.at for step in steps)


@pytest.fixture
def lab(
    pytester: pytest.Pytester,
    sample: SampleCertification,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lab]:
    """A passing qualification suite with logging cleanup and inventory scripts;
    afterwards, nothing it started may still run."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)
    (pytester.path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(pytester.path / "tmp"))
    pytester.makeini("[pytest]\nrouterd_qualification = true\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=PASSING_SUITE)
    lab = Lab(pytester, sample)
    lab.step("cleanup")
    lab.step("inventory")
    yield lab
    survivors = processes_mentioning(pytester.path, tmp_path)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "processes of the run outlived it"


# ------------------------------------------------------------- cleanup and inventory


@pytest.mark.parametrize(
    ("failed", "code", "classification"),
    [
        (0, QualificationExit.OK, "none"),
        (1, QualificationExit.PRODUCT_FAILURE, "product_failure"),
    ],
    ids=["pass", "product-failure"],
)
def test_cleanup_then_inventory_run_once_after_the_session(
    lab: Lab, failed: int, code: QualificationExit, classification: str
) -> None:
    if failed:
        lab.pytester.makepyfile(
            test_suite=PASSING_SUITE.replace('OUTCOME = "passed"', 'OUTCOME = "failed"')
        )
    result = lab.run()
    assert result.ret == code
    result.assert_outcomes(passed=2 - failed, failed=failed)
    assert lab.step_names()[:2] == ["test-ready", "test-matrix"]
    lab.assert_cleaned_up_once_after("lab-released")
    document = lab.result()
    assert document["classification"] == classification
    assert (document["cleanupExit"], document["inventoryExit"]) == (0, 0)
    assert isinstance(document["watchdogPid"], int)
    assert document["watchdogAbort"] is None
    assert not running(document["watchdogPid"])
    assert Ledger(lab.ledger).entries() == []
    assert lab.temporary_files == []


def test_the_evidence_dir_keeps_logs_heartbeat_watchdog_records_and_manifest(
    lab: Lab,
) -> None:
    assert lab.run().ret == QualificationExit.OK
    files = {path.name for path in lab.evidence.iterdir()}
    assert {
        "cleanup.stdout.log",
        "cleanup.stderr.log",
        "inventory.stdout.log",
        "inventory.stderr.log",
        EvidenceFile.HEARTBEAT,
        EvidenceFile.WATCHDOG_CONFIG,
        EvidenceFile.WATCHDOG_LOG,
        EvidenceFile.WATCHDOG_READY,
        EvidenceFile.RUN_END,
        EvidenceFile.RESULT_WRITTEN,
        EvidenceFile.MANIFEST,
        EvidenceFile.cleanup_claim(lab.run_id),
        EvidenceFile.cleanup_exits(lab.run_id),
        EvidenceFile.CHECKS,
    } <= files
    # The journal ends where the session's own result does.
    journal = replay(
        lab.evidence / EvidenceFile.CHECKS, running_message="-", not_run_rule="-"
    )
    assert journal == lab.result()["checks"][1:]
    for role in ("cleanup", "inventory"):
        assert (lab.evidence / f"{role}.stdout.log").read_text() == f"{role} ran\n"
        assert (lab.evidence / f"{role}.stderr.log").read_text() == f"{role} notes\n"
    copied = (lab.evidence / EvidenceFile.MANIFEST).read_bytes()
    assert copied == lab.sample.manifest_path.read_bytes()
    watchdog_log = (lab.evidence / EvidenceFile.WATCHDOG_LOG).read_text()
    assert f"for run {lab.run_id}\n" in watchdog_log
    assert watchdog_log.endswith("stopped by the session\n")


def test_a_journal_that_cannot_be_written_is_said_and_fails_nothing(lab: Lab) -> None:
    (lab.evidence / EvidenceFile.CHECKS).mkdir(parents=True)
    result = lab.run()
    assert result.ret == QualificationExit.OK
    result.stdout.fnmatch_lines(
        [
            f"journal: {lab.evidence / EvidenceFile.CHECKS} cannot be opened: Is a "
            "directory; had the watchdog ended the run, its result could not have "
            "listed the tests"
        ]
    )
    assert lab.result()["status"] == "pass"


def test_nothing_is_cleaned_up_after_a_refused_preflight(lab: Lab) -> None:
    result = lab.run("--qualification-environment=lab-other")
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    result.stdout.fnmatch_lines(["*= routerd-qual: preflight refused =*"])
    assert lab.steps() == []
    document = lab.result()
    assert document["classification"] == "preflight_failure"
    assert (document["cleanupExit"], document["inventoryExit"]) == (-1, -1)
    assert document["watchdogPid"] is None
    assert not lab.evidence.exists()


@pytest.mark.parametrize("role", ["cleanup", "inventory"])
def test_a_failing_lifecycle_step_makes_a_passing_run_an_infra_failure(
    lab: Lab, role: str
) -> None:
    lab.step(role, "exit 3\n")
    result = lab.run()
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(passed=2)
    exits = {"cleanup": 0, "inventory": 0, role: 3}
    result.stdout.fnmatch_lines(
        [
            "classification: infra_failure (exit 11)",
            f"lifecycle: cleanup exit {exits['cleanup']}, inventory exit "
            f"{exits['inventory']}; their logs are in {lab.evidence}",
        ]
    )
    lab.assert_cleaned_up_once_after("lab-released")
    document = lab.result()
    assert document["classification"] == "infra_failure"
    assert document["driverExit"] == QualificationExit.INFRA_FAILURE
    assert (document["cleanupExit"], document["inventoryExit"]) == (
        exits["cleanup"],
        exits["inventory"],
    )
    [spent] = Ledger(lab.ledger).entries()
    assert (spent.manifest_id, spent.run_id) == (lab.manifest_id, lab.run_id)


def test_a_hung_cleanup_and_its_child_are_ended_at_its_timeout(lab: Lab) -> None:
    child_pid = lab.root / "child.pid"
    lab.step("cleanup", f'sleep 60 &\necho $! > "{child_pid}"\nsleep 60\n')
    result = lab.run("--qualification-cleanup-timeout=2s")
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.stdout.fnmatch_lines(["lifecycle: cleanup exit 124, inventory exit 0; *"])
    lab.assert_cleaned_up_once_after("lab-released")
    cleanup, inventory = lab.lifecycle_steps()
    assert 2 <= inventory.at - cleanup.at < 5
    document = lab.result()
    assert document["classification"] == "infra_failure"
    assert (document["cleanupExit"], document["inventoryExit"]) == (124, 0)
    assert not running(int(child_pid.read_text()))
    log = (lab.evidence / "cleanup.stderr.log").read_text()
    assert log == (
        "cleanup notes\n\n"
        "routerd-qual: cleanup outlived its 2s timeout; its process group was ended\n"
    )


# ------------------------------------------------------------------------- watchdog


def assert_ended_by_watchdog(
    lab: Lab, reason: str, last: str, *or_: str
) -> dict[str, Any]:
    """The watchdog ended the run for ``reason``, cleaned up once after the step
    ``last`` or one of ``or_`` (the session never finished), wrote the result and
    spent the manifest."""
    document = lab.await_watchdog_result()
    assert document["classification"] == "infra_failure"
    assert document["status"] == "fail"
    assert isinstance(document["watchdogPid"], int)
    assert document["watchdogAbort"]["reason"] == reason
    assert document["watchdogAbort"]["watchdogPid"] == document["watchdogPid"]
    assert (document["cleanupExit"], document["inventoryExit"]) == (0, 0)
    checks = document["checks"]
    assert checks[0]["nodeid"] == "routerd-qual::certification-preflight"
    assert checks[-1]["nodeid"] == "routerd-qual::watchdog"
    # The tests come between, as the session knew them when the run ended.
    for check in checks[1:-1]:
        if check["outcome"] in ("error", "not_run"):
            assert check["message"].startswith(f"the watchdog ended the run: {reason}")
    assert not (lab.evidence / EvidenceFile.RESULT_WRITTEN).exists()
    assert (lab.evidence / EvidenceFile.WATCHDOG_ABORT).exists()
    assert (
        "wrote the result to" in (lab.evidence / EvidenceFile.WATCHDOG_LOG).read_text()
    )
    lab.assert_cleaned_up_once_after(last, *or_)
    [spent] = Ledger(lab.ledger).entries()
    assert (spent.manifest_id, spent.run_id) == (lab.manifest_id, lab.run_id)
    return document


def entries_of(document: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """Each test entry of a result: nodeid, outcome, classification, rule."""
    return [
        (check["nodeid"], check["outcome"], check["classification"], check["rule"])
        for check in document["checks"][1:-1]
    ]


def seconds_between(earlier: str | float, later: str) -> float:
    """Seconds from ``earlier`` (an RFC 3339 stamp or a Unix time) to ``later``."""

    def unix(moment: str | float) -> float:
        if isinstance(moment, float):
            return moment
        return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()

    return unix(later) - unix(earlier)


def test_the_watchdog_ends_a_run_whose_heartbeat_goes_stale(lab: Lab) -> None:
    lab.pytester.makepyfile(test_suite=HANGING_SUITE)
    result = lab.run("--qualification-ttl=20s", "--qualification-heartbeat-stale=2s")
    assert result.ret == -signal.SIGTERM
    document = assert_ended_by_watchdog(lab, "heartbeat-stale", last="running")
    abort = document["watchdogAbort"]
    assert abort["signal"] == "SIGTERM"
    assert document["driverExit"] == -signal.SIGTERM
    assert abort["detail"].endswith("(the heartbeat goes stale after 2s)")
    assert seconds_between(document["startedAt"], abort["at"]) >= 2
    [hung_at] = [step.at for step in lab.steps() if step.what == "running"]
    assert seconds_between(hung_at, abort["at"]) < 4
    assert entries_of(document) == HUNG_CHECKS


def test_the_watchdog_names_the_hung_test_of_a_distributed_run(lab: Lab) -> None:
    lab.pytester.makepyfile(test_suite=HANGING_SUITE)
    result = lab.run(
        "-n",
        "2",
        "--qualification-ttl=20s",
        "--qualification-heartbeat-stale=3s",
    )
    assert result.ret == -signal.SIGTERM
    # The worker that ran the quick tests may release its lab after the hang began.
    document = assert_ended_by_watchdog(
        lab, "heartbeat-stale", "running", "lab-released"
    )
    # The controller kept the journal: the other worker's tests are done.
    hung, *done = HUNG_CHECKS[1], HUNG_CHECKS[0], HUNG_CHECKS[2]
    assert sorted(entries_of(document)) == sorted(
        [hung, *[(nodeid, "passed", "none", None) for nodeid, *_ in done]]
    )


def test_the_watchdog_ends_a_run_that_outlives_its_ttl_while_tests_report(
    lab: Lab,
) -> None:
    lab.pytester.makepyfile(test_suite=SHORT_TESTS_SUITE)
    result = lab.run("--qualification-ttl=4s", "--qualification-heartbeat-stale=3s")
    assert result.ret == -signal.SIGTERM
    document = assert_ended_by_watchdog(lab, "ttl-expired", last="test")
    abort = document["watchdogAbort"]
    assert abort["detail"] == "the run lasted its TTL of 4s"
    assert 4 <= seconds_between(document["startedAt"], abort["at"]) < 6
    started = [step.at for step in lab.steps() if step.what == "test"]
    assert 3 <= len(started) < 40
    # Progress never paused for the stale time: only the TTL could end the run.
    assert max(b - a for a, b in itertools.pairwise(started)) < 3
    assert seconds_between(started[-1], abort["at"]) < 3
    # Every test is listed: those done passed, the one under way is the error
    # (unless the TTL fell between two tests), and the rest never ran.
    outcomes = "".join(outcome[0] for _, outcome, _, _ in entries_of(document))
    assert re.fullmatch(r"p+e?n+", outcomes), outcomes
    assert len(outcomes) == 40
    assert outcomes.count("p") in (len(started) - 1, len(started))


def test_the_watchdog_finishes_the_run_of_a_killed_pytest(lab: Lab) -> None:
    lab.pytester.makepyfile(test_suite=HANGING_SUITE)
    command = [sys.executable, "-m", "pytest", f"--basetemp={lab.root / 'basetemp'}"]
    with (lab.root / "pytest.out").open("wb") as out:
        runner = subprocess.Popen(
            [*command, *lab.args()],
            cwd=lab.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: "running" in lab.step_names(), 30)
        os.kill(runner.pid, signal.SIGKILL)
        assert runner.wait(timeout=10) == -signal.SIGKILL
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    document = assert_ended_by_watchdog(lab, "runner-lost", last="running")
    abort = document["watchdogAbort"]
    assert abort["pytestPid"] == runner.pid
    assert abort["detail"] == f"pytest (pid {runner.pid}) is gone"
    assert abort["signal"] is None
    assert document["driverExit"] == -1
    assert entries_of(document) == HUNG_CHECKS


# ------------------------------------------------------------- refusals at the start


def test_a_spent_manifest_is_refused_on_the_next_attempt(lab: Lab) -> None:
    lab.pytester.makepyfile(test_suite=DEFECT_SUITE)
    first = lab.run()
    assert first.ret == QualificationExit.INFRA_FAILURE
    assert lab.result()["classification"] == "infra_failure"
    [spent] = Ledger(lab.ledger).entries()
    second = lab.run()
    assert second.ret == QualificationExit.PREFLIGHT_FAILURE
    second.stdout.fnmatch_lines(
        [
            f"  - [[]spent] manifest {lab.manifest_id} was spent by run {lab.run_id} "
            f"(infra_failure) at {spent.spent_at}, ledger line 1: the next "
            "qualification attempt must reference a new passing certification; "
            "recertify the environment",
        ]
    )
    document = lab.result()
    assert document["classification"] == "preflight_failure"
    assert "spent" in [reason["rule"] for reason in document["checks"][0]["reasons"]]
    assert len(lab.lifecycle_steps()) == 2  # the first run's, and no more


def test_a_corrupt_ledger_line_makes_the_preflight_refuse(lab: Lab) -> None:
    lab.ledger.write_text("{not json\n")
    result = lab.run()
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    result.stdout.fnmatch_lines(
        [f"  - [[]ledger] the ledger {lab.ledger} is corrupt at line 1 (*"]
    )
    assert lab.steps() == []


@pytest.mark.parametrize("given", ["none", "not-executable"])
def test_a_required_lifecycle_refuses_to_start_without_usable_commands(
    lab: Lab, given: str
) -> None:
    lab.pytester.makeini(
        "[pytest]\nrouterd_qualification = true\n"
        "qualification_require_lifecycle = true\n"
    )
    if given == "none":
        result = lab.run(lifecycle=False)
        expected = [
            f"  - [[]lifecycle-command] qualification_require_lifecycle is set but no "
            f"{role} command was given: pass --qualification-{role}-command CMD "
            f"(ini qualification_{role}_command)"
            for role in ("cleanup", "inventory")
        ]
    else:
        cleanup = lab.root / "cleanup.sh"
        cleanup.chmod(0o644)
        result = lab.run()
        expected = [
            f"  - [[]lifecycle-command] cleanup command '{cleanup}' (from "
            f"--qualification-cleanup-command) names {cleanup}, which is not "
            "executable: fix the path or its mode (chmod +x) before the run starts"
        ]
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    result.stdout.fnmatch_lines(
        [f"{len(expected)} reason(s) the qualification must not start:", *expected]
    )
    assert lab.steps() == []


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (
            ["--qualification-ttl=2h"],
            "--qualification-ttl 2h is longer than the certified run.lifecycle.ttl "
            "45m: an option may only shorten it; pass at most 45m or drop it",
        ),
        (
            ["--qualification-ttl=5m", "--qualification-heartbeat-stale=5m"],
            "the heartbeat stale time 5m is not shorter than the TTL 5m: a stalled "
            "run would only be caught by the TTL; pass a shorter "
            "--qualification-heartbeat-stale",
        ),
    ],
    ids=["ttl-longer-than-certified", "stale-not-shorter-than-ttl"],
)
def test_limits_the_certification_does_not_allow_are_refused(
    lab: Lab, options: list[str], reason: str
) -> None:
    result = lab.run(*options)
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    result.stdout.fnmatch_lines([f"  - [[]lifecycle-limit] {reason}"])
    assert lab.steps() == []


def test_a_bad_duration_is_a_usage_error_naming_the_option(lab: Lab) -> None:
    result = lab.run("--qualification-ttl=5w")
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --qualification-ttl: '5w' is not a duration: write a positive "
            "whole number without a leading zero followed by s, m, h or d, such as "
            "90s, 75m or 2h (the value came from the command line)"
        ]
    )
    assert lab.steps() == []
    assert lab.temporary_files == []


# --------------------------------------------------------------------------- repairs


def test_a_repair_during_qualification_does_not_run_and_stops_the_run(
    lab: Lab,
) -> None:
    lab.pytester.makepyfile(test_suite=REPAIR_SUITE)
    result = lab.run()
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(failed=1)
    assert lab.step_names() == ["lab-released", "cleanup", "inventory"]
    document = lab.result()
    assert document["classification"] == "infra_failure"
    check = checks_by_id(document)[
        "test_suite.py::test_routerd_reports_ready_after_a_repair"
    ]
    assert (check["rule"], check["component"]) == ("raised SubstrateDefect", "repair")
    assert check["message"] == (
        "SubstrateDefect: substrate defect in repair: repair attempted during "
        "qualification: test_suite.regenerate_config_disk"
    )


def test_the_same_repair_runs_outside_a_qualification(lab: Lab) -> None:
    lab.pytester.makeini("[pytest]\n")
    lab.pytester.makepyfile(test_suite=REPAIR_SUITE)
    result = lab.pytester.runpytest_subprocess(*INNER_OPTIONS, timeout=45)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    assert lab.step_names() == [
        "repaired-pve-leaf-a",
        "test-repaired",
        "test-status",
        "lab-released",
    ]
    assert not lab.result_path.exists()
