"""``routerd-qual demo``: the example suite end to end, as a user runs it.

The demo runs pytest in a subprocess of its own; these tests call the command's
entry point in-process and read what it printed and the files it left.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import pytest_routerd_qual
from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.cli import main
from pytest_routerd_qual.demo import DemoLayout, example_suite, run_demo

CHECKOUT = Path(__file__).resolve().parent.parent
LOST_PAIR = "test_pair_is_reachable[pve-client-b->aws-client]"


@dataclass(frozen=True)
class Case:
    """One ``--break`` value and what the demo must end with."""

    break_: str | None
    code: QualificationExit
    classification: str
    summary: str
    #: Under xdist the other worker may meet the dead agent before the stop.
    xdist_summary: str | None = None

    @property
    def options(self) -> list[str]:
        return ["--break", self.break_] if self.break_ else []


CASES = [
    Case(None, QualificationExit.OK, "none", "* 24 passed in *"),
    Case(
        "substrate",
        QualificationExit.INFRA_FAILURE,
        "infra_failure",
        "* 1 failed, 2 passed in *",
        "* failed, * passed in *",
    ),
    Case(
        "product",
        QualificationExit.PRODUCT_FAILURE,
        "product_failure",
        "* 1 failed, 23 passed in *",
    ),
    Case(
        "certification",
        QualificationExit.PREFLIGHT_FAILURE,
        "preflight_failure",
        "  - [[]expired] the certification expired at *",
    ),
]


@dataclass(frozen=True)
class DemoRun:
    """What one demo run returned, printed and left in its working directory."""

    code: int
    out: str
    layout: DemoLayout

    @property
    def lines(self) -> pytest.LineMatcher:
        return pytest.LineMatcher(self.out.splitlines())

    def result(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.layout.result.read_text())
        return document

    def events(self) -> list[dict[str, Any]]:
        text = self.layout.events.read_text()
        return [json.loads(line) for line in text.splitlines()]


RunDemo = Callable[..., DemoRun]


@pytest.fixture
def demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RunDemo:
    """Run ``routerd-qual demo`` with the given arguments in a kept work dir."""
    monkeypatch.delenv("ROUTERD_LAB_BREAK", raising=False)

    def run(*args: str) -> DemoRun:
        workdir = tmp_path / "demo"
        code = main(["demo", "--workdir", str(workdir), *args])
        return DemoRun(code, capsys.readouterr().out, DemoLayout(workdir.resolve()))

    return run


def classification_line(case: Case) -> str:
    status = "pass" if case.code == QualificationExit.OK else "fail"
    return (
        f"routerd-qual demo: classification {case.classification} "
        f"(status {status}, exit {int(case.code)})"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.break_ or "none")
def test_demo_exits_with_the_verdict_of_its_suite(demo: RunDemo, case: Case) -> None:
    run = demo(*case.options)
    assert run.code == case.code
    assert run.result()["classification"] == case.classification
    run.lines.fnmatch_lines(
        [
            f"routerd-qual demo: suite in */suite, break: {case.break_ or 'none'}",
            case.summary,
            classification_line(case),
        ]
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.break_ or "none")
def test_demo_gives_the_same_verdicts_under_xdist(demo: RunDemo, case: Case) -> None:
    run = demo(*case.options, "--", "-n", "2")
    assert run.code == case.code
    assert run.result()["classification"] == case.classification
    run.lines.fnmatch_lines([classification_line(case)])
    if case.break_ != "certification":
        # A refused preflight starts no worker at all.
        summary = case.xdist_summary or case.summary
        run.lines.fnmatch_lines(["created: 2/2 workers", summary])


def test_demo_prints_where_the_result_and_junit_files_are(demo: RunDemo) -> None:
    run = demo("--break", "product")
    layout = run.layout
    run.lines.fnmatch_lines(
        [
            f"routerd-qual demo: result  {layout.result}",
            f"routerd-qual demo: junit   {layout.junit}",
            f"routerd-qual demo: lab log {layout.events}",
        ]
    )
    cases = ET.parse(layout.junit).getroot().iter("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [LOST_PAIR]


def test_demo_says_which_files_a_refused_run_did_not_write(demo: RunDemo) -> None:
    run = demo("--break", "certification")
    run.lines.fnmatch_lines(
        [
            f"routerd-qual demo: result  {run.layout.result}",
            f"routerd-qual demo: lab log {run.layout.events} (not written)",
        ]
    )


def test_demo_passes_the_arguments_after_a_double_dash_to_pytest(demo: RunDemo) -> None:
    run = demo("--", "-k", "readiness")
    assert run.code == QualificationExit.OK
    run.lines.fnmatch_lines(["* 5 passed, 19 deselected in *"])


def test_demo_stops_every_routerd_stand_in_it_starts(demo: RunDemo) -> None:
    run = demo("--break", "product", "--", "-n", "2")
    events = run.events()
    started = [e["url"] for e in events if e["event"] == "standin-started"]
    stopped = [e["url"] for e in events if e["event"] == "standin-stopped"]
    assert started
    assert sorted(stopped) == sorted(started)
    for url in started:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        assert parts.port is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    assert not [e for e in events if e["event"] == "repair"]


def test_demo_removes_its_temporary_directory_unless_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo", "--", "-k", "reports_ready"]) == QualificationExit.OK
    assert list(tmp_path.iterdir()) == []
    assert "is removed on exit" in capsys.readouterr().out
    assert main(["demo", "--keep", "--", "-k", "reports_ready"]) == QualificationExit.OK
    [kept] = tmp_path.iterdir()
    assert json.loads((kept / "results/qualification-result.json").read_text())


def test_reused_workdir_never_shows_an_earlier_result(demo: RunDemo) -> None:
    assert demo("--break", "product").code == QualificationExit.PRODUCT_FAILURE
    run = demo("--break", "certification")
    assert run.result()["classification"] == "preflight_failure"
    assert not run.layout.junit.exists()


def test_demo_rejects_an_unknown_break_with_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--break", "bridge"])
    assert exited.value.code == 2
    assert "argument --break: invalid choice: 'bridge'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown break 'bridge'"):
        run_demo("bridge", None, keep=False)


def test_demo_command_exits_with_the_suite_code_from_a_shell(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest_routerd_qual.cli", "demo"]
    options = ["--break", "product", "--workdir", str(tmp_path)]
    done = subprocess.run(
        [*command, *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == QualificationExit.PRODUCT_FAILURE, done.stdout
    assert "classification product_failure (status fail, exit 1)" in done.stdout


def test_example_suite_is_found_beside_the_package_that_runs() -> None:
    package = Path(pytest_routerd_qual.__file__).resolve().parent
    suite = example_suite()
    # From a wheel the suite is inside the package; from a checkout, beside it.
    assert suite in (package / "examples", package.parent / "conftest_examples")
    assert (suite / "pytest.ini").is_file()
    assert (suite / "topology.json").is_file()


def test_wheel_ships_every_file_of_the_example_suite() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    package = "pytest_routerd_qual.examples"
    assert setuptools["package-dir"][package] == "conftest_examples"
    assert package in setuptools["packages"]
    patterns = ["*.py", *setuptools["package-data"][package]]
    suite = CHECKOUT / "conftest_examples"
    names = [
        path.relative_to(suite).as_posix()
        for path in suite.rglob("*")
        if path.is_file() and not _is_cache(path.relative_to(suite))
    ]
    assert "conftest.py" in names
    # Only the top directory is mapped: a file in a subdirectory would be left out.
    left_out = [
        name
        for name in names
        if "/" in name or not any(fnmatch(name, pattern) for pattern in patterns)
    ]
    assert left_out == []


def _is_cache(relative: Path) -> bool:
    """Whether a path of the suite is a tool's cache (the demo does not copy them)."""
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
