"""The example qualification suite (conftest_examples) on its simulated lab.

Each test copies the suite into a pytester directory beside a fresh sample
certification and runs it under the plugin: in-process, or in a subprocess where
pytest-xdist starts workers.
"""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.demo import LAB_BREAK_ENV, LAB_EVENTS_ENV, example_suite
from pytest_routerd_qual.testing import SampleCertification, write_sample_certification

ALL_TESTS = 24
THIRD_TEST = "test_substrate.py::test_guest_agent_answers[pve-client-a]"
LOST_PAIR = (
    "test_connectivity_matrix.py::test_pair_is_reachable[pve-client-b->aws-client]"
)
MATRIX = [
    "pve-client-a->pve-client-b",
    "pve-client-a->aws-client",
    "pve-client-b->pve-client-a",
    "pve-client-b->aws-client",
    "aws-client->pve-client-a",
    "aws-client->pve-client-b",
]


@dataclass(frozen=True)
class ExampleSuite:
    """The example suite in a pytester directory, and how to run it."""

    pytester: pytest.Pytester
    sample: SampleCertification

    @property
    def result_path(self) -> Path:
        return self.pytester.path / "results" / "qualification-result.json"

    @property
    def events_path(self) -> Path:
        return self.pytester.path / "results" / "lab-events.jsonl"

    def args(self, *extra: str) -> list[str]:
        return [
            *self.sample.pytest_args(),
            f"--qualification-result={self.result_path}",
            # Hypothesis's plugin imports hypothesis at each session's end, and
            # pytester forgets in-process imports after each run: seconds a run.
            "-p",
            "no:hypothesispytest",
            # In-process, the plugin was imported before this inner session could
            # mark it for assertion rewriting; the suite's ini makes warnings errors.
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            *extra,
        ]

    def run(self, *extra: str) -> pytest.RunResult:
        return self.pytester.runpytest(*self.args(*extra))

    def collect(self, *extra: str) -> list[pytest.Item]:
        """The suite's items in the order they would run."""
        recorder = self.pytester.inline_run("--collect-only", *self.args(*extra))
        [finish] = recorder.getcalls("pytest_collection_finish")
        return list(finish.session.items)

    def run_subprocess(self, *extra: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self.args(*extra))

    def result(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.result_path.read_text())
        return document

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text().splitlines()
        return [json.loads(line) for line in lines]


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> ExampleSuite:
    """The example suite with a passing certification of its lab, unbroken."""
    shutil.copytree(
        example_suite(),
        pytester.path,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
        dirs_exist_ok=True,
    )
    (pytester.path / "results").mkdir()
    monkeypatch.delenv(LAB_BREAK_ENV, raising=False)
    monkeypatch.setenv(LAB_EVENTS_ENV, str(pytester.path / "results/lab-events.jsonl"))
    # When these tests run under xdist themselves, the suite's session is its own.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    sample = write_sample_certification(pytester.path / "lab")
    return ExampleSuite(pytester, sample)


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern: test IDs hold brackets."""
    return text.replace("[", "[[]")


def break_lab(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    monkeypatch.setenv(LAB_BREAK_ENV, what)


def stand_in_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("routerd-standin")]


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port is not None
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_example_suite_passes_on_a_healthy_lab(example: ExampleSuite) -> None:
    result = example.run()
    assert result.ret == QualificationExit.OK
    result.assert_outcomes(passed=ALL_TESTS)
    result.stdout.fnmatch_lines(
        ["routerd lab: lab-sim/two-leaf (simulated), break: none"]
    )
    assert example.result()["classification"] == "none"
    assert example.result()["status"] == "pass"


def test_substrate_break_stops_the_suite_at_the_third_test(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "substrate")
    result = example.run()
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * substrate defect in qga: the qga of pve-client-a did not answer "
            "within 5s (vmid 9101)",
            f"FAILED {literal(THIRD_TEST)} - *",
        ]
    )
    assert example.result()["classification"] == "infra_failure"


def test_lab_sdk_timeout_in_a_matrix_check_is_an_infra_failure(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "substrate")
    result = example.run("-k", "matrix")
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(failed=1, deselected=ALL_TESTS - len(MATRIX))
    result.stdout.fnmatch_lines(
        ["E *GuestAgentTimeout: the qga of pve-client-a did not answer within 5s"]
    )
    failures = [
        check
        for check in example.result()["checks"]
        if check["classification"] != "none"
    ]
    assert [(c["nodeid"], c["classification"]) for c in failures] == [
        (
            "test_connectivity_matrix.py::test_pair_is_reachable"
            "[pve-client-a->pve-client-b]",
            "infra_failure",
        )
    ]


def test_product_break_fails_only_the_pair_that_lost_its_route(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "product")
    result = example.run()
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    result.assert_outcomes(passed=ALL_TESTS - 1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * pve-client-b->aws-client undelivered: pve-leaf-b has no route to "
            "10.20.0.0/24 (installed: 10.10.1.0/24)",
            f"FAILED {literal(LOST_PAIR)}*",
        ]
    )
    assert example.result()["classification"] == "product_failure"


def test_unknown_lab_break_is_a_usage_error(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "bridge")
    result = example.run()
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ROUTERD_LAB_BREAK='bridge' is not a lab break: use substrate or *"]
    )


def test_matrix_pairs_come_from_the_topology(example: ExampleSuite) -> None:
    items = example.collect("-k", "matrix")
    ids = [item.callspec.id for item in items if isinstance(item, pytest.Function)]
    assert ids == MATRIX


def test_every_example_test_has_exactly_one_scope_and_substrate_goes_first(
    example: ExampleSuite,
) -> None:
    items = example.collect()
    assert len(items) == ALL_TESTS
    scopes = []
    for item in items:
        marks = [
            mark.args[0] if mark.name == "qualification_check" else mark.name
            for mark in item.iter_markers()
            if mark.name in ("qualification_check", "substrate")
        ]
        assert len(marks) == 1, item.nodeid
        scopes.append(marks[0])
    order = ["substrate", "readiness", "connectivity_matrix", "provider_action"]
    assert scopes == sorted(scopes, key=order.index)
    assert items[2].nodeid == THIRD_TEST


def assert_every_stand_in_stopped(example: ExampleSuite) -> list[str]:
    """Assert every stand-in the run started was stopped; return their URLs."""
    events = example.events()
    started = [e["url"] for e in events if e["event"] == "standin-started"]
    stopped = [e["url"] for e in events if e["event"] == "standin-stopped"]
    assert sorted(stopped) == sorted(started)
    assert all(refuses_connections(url) for url in started)
    return started


def test_routerd_stand_ins_are_stopped_when_the_session_ends(
    example: ExampleSuite,
) -> None:
    assert example.run().ret == QualificationExit.OK
    assert stand_in_threads() == []
    # One for the session, one of test_provider_actions.py's own.
    assert len(assert_every_stand_in_stopped(example)) == 2


def test_routerd_stand_ins_are_stopped_when_an_infra_failure_stops_the_run(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "substrate")
    result = example.run("-k", "not test_substrate")
    assert result.ret == QualificationExit.INFRA_FAILURE
    assert stand_in_threads() == []
    assert len(assert_every_stand_in_stopped(example)) == 1


def test_routerd_stand_ins_are_stopped_on_xdist_workers(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_lab(monkeypatch, "product")
    result = example.run_subprocess("-n", "2")
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    assert assert_every_stand_in_stopped(example)


def test_no_test_of_the_suite_calls_the_repair_action(example: ExampleSuite) -> None:
    example.run()
    assert [e for e in example.events() if e["event"] == "repair"] == []


def test_repair_called_during_qualification_is_refused_and_stops_the_run(
    example: ExampleSuite,
) -> None:
    example.pytester.makepyfile(
        test_zz_operator="""
        import pytest
        from routerd_lab import restart_guest_agent

        @pytest.mark.qualification_check("readiness")
        def test_operator_restarts_an_agent(lab):
            restart_guest_agent(lab, "pve-client-a")
        """
    )
    result = example.run("-k", "operator")
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(failed=1, deselected=ALL_TESTS)
    result.stdout.fnmatch_lines(
        ["E * repair attempted during qualification: routerd_lab.restart_guest_agent"]
    )
    assert example.events() == []


def test_repair_runs_outside_qualification(
    example: ExampleSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(example.pytester.path))
    # Set, then deleted: when the test ends, monkeypatch drops the routerd_lab
    # imported below, so that later in-process runs import their own copy.
    monkeypatch.setitem(sys.modules, "routerd_lab", None)
    monkeypatch.delitem(sys.modules, "routerd_lab")
    routerd_lab: Any = importlib.import_module("routerd_lab")
    lab = routerd_lab.Lab(routerd_lab.Topology.load(), routerd_lab.Break.SUBSTRATE)
    with pytest.raises(routerd_lab.GuestAgentTimeout):
        lab.guests["pve-client-a"].ping()
    routerd_lab.restart_guest_agent(lab, "pve-client-a")
    lab.guests["pve-client-a"].ping()
