"""Classify each test outcome the way the release qualification policy does.

Pure functions and small value types: a test's scope read from its markers, the
substrate defect (if any) in an exception's chain, and the finding for one failed
phase. :class:`CheckBook` folds the findings of every phase of every test into one
record per test and the run's classification. Nothing here imports pytest.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .defects import SubstrateDefect
from .exitcodes import Classification, most_severe

QUALIFICATION_CHECK = "qualification_check"
SUBSTRATE = "substrate"
FAULT_INJECTION = "fault_injection"
KINDS = ("readiness", "connectivity_matrix", "provider_action")

RULE_DEFECT = "raised SubstrateDefect"
RULE_LISTED = "listed in substrate_exceptions"
RULE_SUBSTRATE = "substrate-scoped test failed"
RULE_PRODUCT = "qualification_check failed"
RULE_STOPPED = "not run: the run stopped at an infra failure"

#: Outcomes of a check in the result, from least to most severe.
OUTCOMES = ("not_run", "passed", "skipped", "failed", "error")


@dataclass(frozen=True)
class Mark:
    """A marker as read from a test: its name and arguments."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """What a test checks: a routerd product check of some kind, or the substrate."""

    scope: str
    kind: str | None = None
    fault_injection: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "kind": self.kind,
            "faultInjection": self.fault_injection,
        }


class ScopeError(Exception):
    """A test's markers do not give it exactly one valid scope."""


def read_scope(marks: Iterable[Mark]) -> Scope:
    """The scope of a test from its markers, or :class:`ScopeError` saying why not."""
    checks = [m for m in marks if m.name == QUALIFICATION_CHECK]
    marks = [m for m in marks if m.name != QUALIFICATION_CHECK] + checks
    substrate = any(m.name == SUBSTRATE for m in marks)
    injection = next((m for m in marks if m.name == FAULT_INJECTION), None)
    if checks and substrate:
        raise ScopeError("has both qualification_check and substrate; keep one")
    if len(checks) > 1:
        raise ScopeError("has more than one qualification_check marker")
    if not checks and not substrate:
        raise ScopeError("has no scope: mark it qualification_check(kind) or substrate")
    description = _single_argument(injection) if injection else None
    if injection is not None and not description:
        raise ScopeError("fault_injection needs a description of the injected failure")
    if substrate:
        return Scope(SUBSTRATE, None, description)
    kind = _single_argument(checks[0])
    if kind not in KINDS:
        raise ScopeError(
            f"qualification_check kind {kind!r} is unknown; use one of "
            + ", ".join(KINDS)
        )
    return Scope(QUALIFICATION_CHECK, kind, description)


def _single_argument(mark: Mark) -> Any:
    values = list(mark.args) + list(mark.kwargs.values())
    return values[0] if len(values) == 1 else None


def load_exception_types(entries: Sequence[str]) -> tuple[type[BaseException], ...]:
    """Import the ``module:Name`` entries of ``substrate_exceptions``.

    Raises :class:`ValueError` naming the entry that cannot be used.
    """
    types: list[type[BaseException]] = []
    for entry in entries:
        module_name, _, name = entry.strip().partition(":")
        if not module_name or not name:
            raise ValueError(f"{entry!r} is not of the form module:Name")
        try:
            target: Any = importlib.import_module(module_name)
            for part in name.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"{entry!r} cannot be imported: {exc}") from None
        if not (isinstance(target, type) and issubclass(target, BaseException)):
            raise ValueError(f"{entry!r} is not an exception type")
        types.append(target)
    return tuple(types)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception Python would print for ``exc``: its causes, its contexts,
    and the members of exception groups, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        members = getattr(current, "exceptions", None)
        if isinstance(members, Sequence):
            stack.extend(m for m in members if isinstance(m, BaseException))
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            stack.append(current.__context__)


@dataclass(frozen=True)
class Finding:
    """How one phase of a test was classified, and by which rule."""

    classification: Classification
    rule: str | None = None
    component: str | None = None


NO_FINDING = Finding(Classification.NONE)


def find_defect(
    exc: BaseException, listed: tuple[type[BaseException], ...] = ()
) -> Finding | None:
    """The infra finding for the first substrate defect in ``exc``'s chain."""
    for member in exception_chain(exc):
        if isinstance(member, SubstrateDefect):
            return Finding(Classification.INFRA_FAILURE, RULE_DEFECT, member.component)
        if listed and isinstance(member, listed):
            component = getattr(member, "component", None)
            return Finding(
                Classification.INFRA_FAILURE,
                RULE_LISTED,
                component if isinstance(component, str) else type(member).__name__,
            )
    return None


def classify(
    scope: Scope,
    exc: BaseException | None,
    *,
    failed: bool,
    listed: tuple[type[BaseException], ...] = (),
) -> Finding:
    """Classify one phase of a test.

    A substrate defect anywhere in the exception's chain is an infra failure, even
    when the phase did not fail (a skip or xfail raised while handling a defect hides
    it). Otherwise a failure follows the test's scope.
    """
    if exc is not None:
        defect = find_defect(exc, listed)
        if defect is not None:
            return defect
    if not failed:
        return NO_FINDING
    if scope.scope == SUBSTRATE:
        return Finding(Classification.INFRA_FAILURE, RULE_SUBSTRATE)
    return Finding(Classification.PRODUCT_FAILURE, RULE_PRODUCT)


@dataclass
class CheckRecord:
    """Everything the result says about one test."""

    nodeid: str
    scope: Scope | None = None
    outcome: str = "not_run"
    classification: Classification = Classification.NONE
    rule: str | None = None
    phase: str | None = None
    duration: float = 0.0
    message: str | None = None
    component: str | None = None
    reruns: int = 0
    after_stop: bool = False

    def to_json(self) -> dict[str, Any]:
        scope = self.scope.to_json() if self.scope else {"scope": None, "kind": None}
        return {
            "nodeid": self.nodeid,
            **scope,
            "outcome": self.outcome,
            "classification": self.classification.value,
            "rule": self.rule,
            "phase": self.phase,
            "durationSeconds": round(self.duration, 6),
            "message": self.message,
            "component": self.component,
            "reruns": self.reruns,
            "afterStop": self.after_stop,
        }


@dataclass(frozen=True)
class PhaseReport:
    """One phase of one test as observed (in this process or on a worker)."""

    nodeid: str
    phase: str
    outcome: str
    duration: float
    finding: Finding
    message: str | None = None


class CheckBook:
    """One record per collected test, folded from phase reports as they arrive."""

    def __init__(self) -> None:
        self.records: dict[str, CheckRecord] = {}
        self.stop_reason: str | None = None

    def _record(self, nodeid: str) -> CheckRecord:
        # Not setdefault: it would build a record to throw away on every report.
        record = self.records.get(nodeid)
        if record is None:
            record = self.records[nodeid] = CheckRecord(nodeid)
        return record

    def collected(self, nodeid: str, scope: Scope | None) -> None:
        record = self._record(nodeid)
        if scope is not None:
            record.scope = scope

    def observe(self, report: PhaseReport, scope: Scope | None) -> CheckRecord:
        """Fold one phase report into its test's record and return the record.

        A failed attempt that pytest-rerunfailures reruns only counts as a rerun,
        unless a substrate defect caused it: that is never forgiven by a rerun.
        """
        record = self._record(report.nodeid)
        if scope is not None and record.scope is None:
            record.scope = scope
        record.duration += report.duration
        if record.outcome == "not_run":
            record.outcome = "passed"
            record.after_stop = self.stop_reason is not None
        finding = report.finding
        if finding is NO_FINDING and report.outcome == "passed":
            return record  # Nothing to fold: the most common report by far.
        if report.outcome == "rerun":
            record.reruns += 1
            if finding.classification is not Classification.INFRA_FAILURE:
                return record
        record.outcome = max(record.outcome, _phase_outcome(report), key=OUTCOMES.index)
        if finding.classification.severity > record.classification.severity:
            record.classification = finding.classification
            record.rule = finding.rule
            record.component = finding.component
            record.phase = report.phase
            record.message = report.message
        elif record.message is None and report.outcome != "passed":
            record.phase = report.phase
            record.message = report.message
        return record

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def classification(self) -> Classification:
        return most_severe(r.classification for r in self.records.values())

    def failures(self) -> list[CheckRecord]:
        return [
            r
            for r in self.records.values()
            if r.classification is not Classification.NONE
        ]

    def not_run(self) -> list[CheckRecord]:
        return [r for r in self.records.values() if r.outcome == "not_run"]

    def entries(self) -> list[dict[str, Any]]:
        entries = []
        for record in self.records.values():
            entry = record.to_json()
            if record.outcome == "not_run" and self.stop_reason:
                entry["rule"] = RULE_STOPPED
                entry["message"] = self.stop_reason
            entries.append(entry)
        return entries


def _phase_outcome(report: PhaseReport) -> str:
    if report.outcome == "skipped":
        return "skipped"
    if report.outcome in ("failed", "rerun"):
        return "failed" if report.phase == "call" else "error"
    return "passed"
