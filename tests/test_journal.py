"""The check journal the watchdog writes its result from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_routerd_qual.journal import RULE_RUNNING, CheckJournal, replay

ENDED = "the watchdog ended the run: ttl-expired: the run lasted its TTL of 4s"
STOPPED = "not run: the run stopped at an infra failure"


def entry(nodeid: str, outcome: str = "not_run", **fields: Any) -> dict[str, Any]:
    return {"nodeid": nodeid, "outcome": outcome, "classification": "none", **fields}


def replayed(path: Path) -> list[tuple[str, str, str, Any]]:
    return [
        (e["nodeid"], e["outcome"], e["classification"], e.get("rule"))
        for e in replay(path, running_message=ENDED, not_run_rule=STOPPED)
    ]


@pytest.fixture
def journal(tmp_path: Path) -> CheckJournal:
    opened = CheckJournal(tmp_path / "checks.jsonl")
    opened.open()
    return opened


def test_done_running_and_never_started_tests_in_collection_order(
    journal: CheckJournal,
) -> None:
    journal.collected(["t::a", "t::b", "t::c"], entry)
    journal.running("t::a")
    journal.entry(entry("t::a", "passed"))
    journal.running("t::b")
    journal.close()
    assert replayed(journal.path) == [
        ("t::a", "passed", "none", None),
        ("t::b", "error", "infra_failure", RULE_RUNNING),
        ("t::c", "not_run", "none", STOPPED),
    ]
    by_id = {
        e["nodeid"]: e
        for e in replay(journal.path, running_message=ENDED, not_run_rule=STOPPED)
    }
    assert by_id["t::b"]["message"] == by_id["t::c"]["message"] == ENDED


def test_collection_reported_twice_is_journaled_once(journal: CheckJournal) -> None:
    # Every xdist worker reports the same collection to the controller; the entry
    # of a test is built once, not once per worker.
    built: list[str] = []

    def entry_of(nodeid: str) -> dict[str, Any]:
        built.append(nodeid)
        return entry(nodeid)

    journal.collected(["t::a", "t::b"], entry_of)
    journal.collected(["t::a", "t::b"], entry_of)
    journal.close()
    assert len(journal.path.read_bytes().splitlines()) == 2
    assert built == ["t::a", "t::b"]


def test_a_rerun_attempt_under_way_is_the_one_that_counts(
    journal: CheckJournal,
) -> None:
    journal.collected(["t::flaky"], entry)
    journal.running("t::flaky")
    journal.entry(entry("t::flaky", "failed", reruns=1))
    journal.running("t::flaky")
    journal.close()
    assert replayed(journal.path) == [
        ("t::flaky", "error", "infra_failure", RULE_RUNNING)
    ]


def test_a_line_cut_short_is_skipped_and_the_rest_kept(
    journal: CheckJournal,
) -> None:
    journal.collected(["t::a", "t::b"], entry)
    journal.entry(entry("t::a", "failed", classification="product_failure"))
    journal.close()
    with journal.path.open("ab") as out:
        out.write(b'{"entry": {"nodeid": "t::b", "outc')
    assert replayed(journal.path) == [
        ("t::a", "failed", "product_failure", None),
        ("t::b", "not_run", "none", STOPPED),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"[]",
        b'"text"',
        b'{"entry": []}',
        b'{"entry": {"nodeid": 7}}',
        b'{"running": 7}',
    ],
)
def test_lines_of_another_shape_are_skipped(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "checks.jsonl"
    good = json.dumps({"entry": entry("t::a", "passed")}).encode()
    path.write_bytes(line + b"\n" + good + b"\n")
    assert replayed(path) == [("t::a", "passed", "none", None)]


def test_no_journal_gives_no_entries(tmp_path: Path) -> None:
    assert replayed(tmp_path / "absent.jsonl") == []


def test_a_journal_that_cannot_be_opened_never_fails_the_session(
    tmp_path: Path,
) -> None:
    journal = CheckJournal(tmp_path / "missing-directory" / "checks.jsonl")
    journal.open()
    journal.collected(["t::a"], entry)
    journal.running("t::a")
    journal.entry(entry("t::a", "passed"))
    journal.close()
    assert journal.broken is not None
    assert "cannot be opened" in journal.broken


def test_a_journal_that_cannot_be_written_stops_writing(tmp_path: Path) -> None:
    journal = CheckJournal(Path("/dev/full"))
    journal.open()
    journal.running("t::a")
    assert journal.broken == "/dev/full cannot be written: No space left on device"
    journal.entry(entry("t::a", "passed"))  # no second attempt, no error


@pytest.mark.parametrize(
    "nodeid",
    ['t.py::test_x["quoted"]', "t.py::test_x[back\\slash]", "t.py::test_x[π→ü]"],
)
def test_any_test_id_survives_the_journal(journal: CheckJournal, nodeid: str) -> None:
    journal.collected([nodeid], entry)
    journal.running(nodeid)
    journal.close()
    assert replayed(journal.path) == [(nodeid, "error", "infra_failure", RULE_RUNNING)]
