"""The part of a qualification session that runs where the tests run.

:class:`RunObserver` reads each test's scope at collection, classifies each phase
where its exception is (in this process, or on a pytest-xdist worker), attaches the
finding to the report so that it travels with it, and stops the run at the first
substrate defect. The controller side lives in :mod:`.session`.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .classification import (
    NO_FINDING,
    Finding,
    Mark,
    Scope,
    ScopeError,
    classify,
    load_exception_types,
    read_scope,
)
from .exitcodes import Classification

#: The attribute of a test report that carries the plugin's finding.
REPORT_ATTRIBUTE = "routerd_qual"
SCOPE_KEY = pytest.StashKey[Scope]()
FINDING_KEY = pytest.StashKey[Finding]()
_MESSAGE_LIMIT = 300
_SCOPE_MARKERS = ("qualification_check", "substrate", "fault_injection")


class StopSignal:
    """The run's stop, shared by every process of the run through one file.

    The controller raises it when it learns of an infra failure and knows its
    reason from then on; each xdist worker (``watch``) looks for the file before
    starting a test. Without a file (a single process) it lives in memory only.
    """

    def __init__(self, path: Path | None, *, watch: bool = False) -> None:
        self.path = path
        self.watch = watch
        self._reason: str | None = None

    def raise_(self, reason: str) -> None:
        if self._reason is not None:
            return
        self._reason = reason
        if self.path is not None:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(reason)
            temporary.replace(self.path)

    def reason(self) -> str | None:
        if self._reason is None and self.watch and self.path is not None:
            # A failed stat is the cheap common case: the run goes on.
            if not self.path.exists():
                return None
            self._reason = self.path.read_text() or "stopped"
        return self._reason


def scope_of(item: pytest.Item) -> Scope:
    """The item's scope from its markers; :class:`ScopeError` when it has none."""
    marks = [
        Mark(mark.name, tuple(mark.args), dict(mark.kwargs))
        for mark in item.iter_markers()
        if mark.name in _SCOPE_MARKERS
    ]
    return read_scope(marks)


def one_line(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str | None:
    if excinfo is None:
        return None
    text = str(excinfo.value).strip().splitlines()
    message = f"{excinfo.typename}: {text[0]}" if text else excinfo.typename
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "\u2026"
    return message


def stop_reason(nodeid: str, finding: Finding) -> str:
    component = f" ({finding.component})" if finding.component else ""
    return (
        f"routerd-qual: infra_failure in {nodeid}{component}: {finding.rule}; "
        "the run stops"
    )


class RunObserver:
    """Classify every phase of every test where it runs, and stop at infra."""

    def __init__(self, config: pytest.Config, stop: StopSignal) -> None:
        self.config = config
        self.stop = stop
        self.session: pytest.Session | None = None
        entries: Sequence[str] = config.getini("substrate_exceptions")
        try:
            self.listed = load_exception_types(entries)
        except ValueError as exc:
            raise pytest.UsageError(f"ini substrate_exceptions: {exc}") from None
        self.scopes: dict[str, Scope] = {}

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Give every test its scope; a test without exactly one stops the run."""
        problems = []
        for item in items:
            try:
                scope = scope_of(item)
            except ScopeError as exc:
                problems.append(f"  {item.nodeid}: {exc}")
                continue
            item.stash[SCOPE_KEY] = scope
            self.scopes[item.nodeid] = scope
        if problems:
            self.refuse_collection(items, problems)

    def refuse_collection(self, items: list[pytest.Item], problems: list[str]) -> None:
        raise pytest.UsageError(scope_error_message(problems))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> bool | None:
        """Start no test once the run has stopped."""
        reason = self.stop.reason()
        if reason is None:
            return None
        item.session.shouldstop = reason
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Refuse the reruns that a rerun plugin attempts after the stop."""
        if self.stop.reason() is not None:
            pytest.skip("not run: the run stopped at an infra failure")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Classify the phase where its exception is, and attach the finding."""
        report = yield
        scope = item.stash.get(SCOPE_KEY, None)
        if scope is None:
            return report
        excinfo = call.excinfo
        if excinfo is None and not report.failed:
            # The common case: nothing to classify, nothing to carry.
            if report.when == "teardown":
                finding = item.stash.get(FINDING_KEY, NO_FINDING)
                report.user_properties.extend(junit_properties(scope, finding))
            return report
        finding = classify(
            scope,
            excinfo.value if excinfo is not None else None,
            failed=report.failed,
            listed=self.listed,
        )
        worst = item.stash.get(FINDING_KEY, NO_FINDING)
        if finding.classification.severity > worst.classification.severity:
            item.stash[FINDING_KEY] = worst = finding
        setattr(
            report,
            REPORT_ATTRIBUTE,
            {
                **scope.to_json(),
                "classification": finding.classification.value,
                "rule": finding.rule,
                "component": finding.component,
                "message": one_line(excinfo) if finding.rule or report.failed else None,
            },
        )
        if report.when == "teardown":
            report.user_properties.extend(junit_properties(scope, worst))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Stop the run at the first infra failure (pytest's own stop mechanism)."""
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data and data["classification"] == Classification.INFRA_FAILURE.value:
            finding = Finding(
                Classification.INFRA_FAILURE, data["rule"], data["component"]
            )
            self.halt(stop_reason(report.nodeid, finding))

    def halt(self, reason: str) -> None:
        self.stop.raise_(reason)
        if self.session is not None and not self.session.shouldstop:
            self.session.shouldstop = reason


def junit_properties(scope: Scope, finding: Finding) -> list[tuple[str, Any]]:
    properties: list[tuple[str, Any]] = [
        ("classification", finding.classification.value),
        ("check", scope.kind or scope.scope),
    ]
    if finding.rule:
        properties.append(("classification_rule", finding.rule))
    if finding.component:
        properties.append(("component", finding.component))
    return properties


def scope_error_message(problems: list[str]) -> str:
    return (
        f"routerd-qual: {len(problems)} test(s) lack exactly one qualification "
        "scope; no test was run:" + os.linesep + os.linesep.join(problems)
    )
