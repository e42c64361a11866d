"""The qualification plugin objects: registered only when the gate applies.

:class:`QualificationSession` drives a qualification in a single process or on the
pytest-xdist controller: the preflight before anything else, the verdict in the
header, the aggregation of every finding, the exit code, the terminal summary and the
result document. :class:`QualificationWorker` is what an xdist worker runs: it gets
the verdict from the controller and never needs the manifest file. Both are thin
shells over the pure core (:mod:`.preflight`, :mod:`.classification`, :mod:`.result`).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pendulum
import pytest

from .classification import (
    NO_FINDING,
    QUALIFICATION_CHECK,
    SUBSTRATE,
    CheckBook,
    CheckRecord,
    Finding,
    PhaseReport,
    Scope,
)
from .exitcodes import Classification, QualificationExit, most_severe
from .ledger import Ledger, LedgerError
from .lifecycle import (
    Guard,
    LifecycleError,
    lifecycle_failed,
    lifecycle_preflight_rules,
    lifecycle_settings_from_config,
)
from .observe import REPORT_ATTRIBUTE, RunObserver, StopSignal, scope_error_message
from .options import list_value, path_value, string_value
from .preflight import (
    Request,
    Verdict,
    go_line,
    refusal_lines,
    run_preflight,
)
from .repair import activate, deactivate
from .result import (
    NOT_RUN,
    RunIdentity,
    build_result,
    markdown_summary,
    write_atomic,
)
from .worker import WORKER_INPUT, WORKER_PROBLEMS, WORKER_SCOPES

#: Where the result goes when no path is given: evidence is never lost.
DEFAULT_RESULT = Path(".routerd-qual", "result.json")

NEXT_STEP = {
    Classification.INFRA_FAILURE: (
        "stop. The substrate is not trustworthy: do not repair it in place. "
        "Recertify the environment and run again with the new manifest."
    ),
    Classification.PRODUCT_FAILURE: (
        "routerd failed on a certified substrate: triage the product failures above."
    ),
    Classification.NONE: "routerd qualified on the certified substrate.",
}


def build_request(config: pytest.Config) -> Request:
    """The run the operator requested, from options, environment and ini only."""
    return Request(
        manifest_path=path_value(config, "--certification-manifest"),
        environment=string_value(config, "--qualification-environment"),
        topology=string_value(config, "--qualification-topology"),
        providers=list_value(config, "--qualification-providers"),
        scripts_root=path_value(config, "--qualification-scripts-root")
        or config.rootpath,
        release=string_value(config, "--qualification-release"),
        labs_commit=string_value(config, "--qualification-labs-commit"),
        schema_path=path_value(config, "--certification-schema"),
    )


def identity_of(verdict: Verdict) -> RunIdentity:
    path = verdict.request.manifest_path
    return RunIdentity(
        manifest_id=verdict.manifest_id,
        run_id=verdict.run_id,
        release=verdict.release,
        manifest_sha256=verdict.sha256,
        manifest_path=str(path) if path else None,
    )


def preflight_entry(verdict: Verdict) -> dict[str, Any]:
    """The first entry of ``checks``: ties the evidence to the certified bytes."""
    return {
        "nodeid": "routerd-qual::certification-preflight",
        "scope": "preflight",
        "kind": None,
        "outcome": "passed" if verdict.go else "failed",
        "classification": (
            Classification.NONE if verdict.go else Classification.PREFLIGHT_FAILURE
        ).value,
        "manifestPath": (
            str(verdict.request.manifest_path)
            if verdict.request.manifest_path
            else None
        ),
        "manifestSha256": verdict.sha256,
        "checkedAt": verdict.checked_at.isoformat(),
        "reasons": [{"rule": r.rule, "message": r.message} for r in verdict.reasons],
    }


def final_exit(
    exitstatus: int, classification: Classification, *, by_user: bool = False
) -> int:
    """The session's exit code.

    An infra failure wins over pytest's own codes, except an internal or usage
    error, which keep their meaning. Product failures that stopped the run through
    ``--maxfail`` end with 1, as they do without xdist; only an interruption by the
    user keeps pytest's 2.
    """
    if classification is Classification.INFRA_FAILURE and exitstatus not in (
        QualificationExit.INTERNAL_ERROR,
        QualificationExit.USAGE_ERROR,
    ):
        return QualificationExit.INFRA_FAILURE
    if (
        classification is Classification.PRODUCT_FAILURE
        and exitstatus == QualificationExit.INTERRUPTED
        and not by_user
    ):
        return QualificationExit.PRODUCT_FAILURE
    return exitstatus


def failure_line(record: CheckRecord, width: int) -> str:
    return (
        f"  {record.classification.value:<{width}}  {record.component or '-':<14} "
        f"{record.nodeid} [{record.rule}, {record.phase}]"
    )


def scope_from_json(data: dict[str, Any]) -> Scope | None:
    if data.get("scope") not in (QUALIFICATION_CHECK, SUBSTRATE):
        return None
    return Scope(data["scope"], data.get("kind"), data.get("faultInjection"))


class QualificationSession(RunObserver):
    """Gate, observe and record one qualification session (single process or
    xdist controller).

    The preflight runs at session start, before the terminal header and before any
    xdist worker exists; a refusal writes the result and ends the session with exit
    10 before any test is collected. After a go, every phase report feeds a
    :class:`CheckBook`; the first infra failure raises the run's stop; at the end the
    exit code is set, the summary printed and the result written, once.
    """

    def __init__(self, config: pytest.Config) -> None:
        # Bad settings are usage errors: raise them before the stop directory
        # exists, since pytest_unconfigure (which removes it) will not run.
        self.lifecycle = lifecycle_settings_from_config(config)
        super().__init__(config, StopSignal(None))
        self.stop_directory = Path(tempfile.mkdtemp(prefix="routerd-qual-"))
        self.stop.path = self.stop_directory / "stop"
        self.started_at = pendulum.now("UTC")
        self.verdict: Verdict | None = None
        self.identity = RunIdentity()
        self.result_path = path_value(config, "--qualification-result") or (
            config.rootpath / DEFAULT_RESULT
        )
        self.guard: Guard | None = None
        self.exits = (NOT_RUN, NOT_RUN)
        self.watchdog_abort: dict[str, Any] | None = None
        self.unguarded: str | None = None
        self.result_written = False
        self.book = CheckBook()
        self.problems: list[str] = []
        self.problems_printed = False
        self.by_user = False
        self.final_classification = Classification.NONE
        self.froze = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Run the certification preflight before anything else happens."""
        self.session = session
        self.started_at = pendulum.now("UTC")
        verdict = run_preflight(
            build_request(self.config),
            extra_rules=lifecycle_preflight_rules(self.lifecycle),
        )
        self.verdict = verdict
        self.identity = identity_of(verdict)
        if not verdict.go:
            self._refuse(verdict)
        self._guard(verdict)

    def _guard(self, verdict: Verdict) -> None:
        """Refuse repairs and start the watchdog, before any test or xdist worker."""
        assert verdict.manifest is not None
        assert verdict.document is not None
        if self.config.option.collectonly:
            return  # Listing the tests runs nothing: it must not spend the run ID.
        activate(verdict.run_id)
        try:
            self.guard = Guard.start(
                self.lifecycle.certified_by(verdict.manifest),
                self.identity,
                expires_at=verdict.manifest.expires_at,
                result_path=self.result_path,
                manifest_bytes=verdict.document.data,
                started_at=self.started_at,
                checks=[preflight_entry(verdict)],
                wait=False,
            )
        except LifecycleError as exc:
            # An unguarded run could outlive its certification or leak paid
            # resources: it does not start.
            self.final_classification = Classification.INFRA_FAILURE
            self.write_result(QualificationExit.INFRA_FAILURE)
            deactivate()
            pytest.exit(
                f"routerd-qual: infra_failure: {exc}",
                returncode=QualificationExit.INFRA_FAILURE,
            )

    def _refuse(self, verdict: Verdict) -> None:
        self.final_classification = Classification.PREFLIGHT_FAILURE
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "routerd-qual: preflight refused", red=True)
            for line in refusal_lines(verdict):
                reporter.write_line(line)
        self.write_result(QualificationExit.PREFLIGHT_FAILURE)
        pytest.exit(
            f"routerd-qual: preflight_failure ({len(verdict.reasons)} reason(s) "
            "above); no test was run",
            returncode=QualificationExit.PREFLIGHT_FAILURE,
        )

    def pytest_report_header(self) -> list[str]:
        """Name the certification the run goes under, with its expiry."""
        if self.verdict is None or not self.verdict.go:
            return []
        return [f"routerd-qual: {go_line(self.verdict)}"]

    # -- pytest-xdist controller ------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker the verdict and what it needs of the manifest."""
        node.workerinput[WORKER_INPUT] = json.dumps(
            {
                "go": bool(self.verdict and self.verdict.go),
                "identity": self.identity.to_json(),
                "stopFile": str(self.stop.path),
            }
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Know every collected test on the controller, to record those not run."""
        for nodeid in ids:
            self.book.collected(nodeid, None)
        if self.guard is not None:
            self.guard.journal.collected(ids, self._entry_of)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Learn the scopes and the collection refusals a worker found."""
        output = getattr(node, "workeroutput", None) or {}
        for nodeid, data in json.loads(output.get(WORKER_SCOPES, "{}")).items():
            self.book.collected(nodeid, scope_from_json(data))
        for problem in json.loads(output.get(WORKER_PROBLEMS, "[]")):
            if problem not in self.problems:
                self.problems.append(problem)

    # -- observing ------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        super().pytest_collection_modifyitems(items)
        for item in items:
            self.book.collected(item.nodeid, self.scopes.get(item.nodeid))

    def refuse_collection(self, items: list[pytest.Item], problems: list[str]) -> None:
        for item in items:
            self.book.collected(item.nodeid, self.scopes.get(item.nodeid))
        # pytest prints the usage error itself; the summary need not repeat it.
        self.problems_printed = True
        self.problems = problems
        super().refuse_collection(items, problems)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold the report into the book; stop at the first infra failure."""
        data = getattr(report, REPORT_ATTRIBUTE, None)
        when = report.when or "call"
        if data is None and not report.failed:
            # The common case: a clean phase carries no finding.
            phase = PhaseReport(
                report.nodeid, when, report.outcome, report.duration, NO_FINDING
            )
            record = self.book.observe(phase, None)
        else:
            data = data or self._unexplained(report)
            finding = Finding(
                Classification(data["classification"]), data["rule"], data["component"]
            )
            phase = PhaseReport(
                report.nodeid,
                when,
                report.outcome,
                report.duration,
                finding,
                data.get("message"),
            )
            record = self.book.observe(phase, scope_from_json(data))
            super().pytest_runtest_logreport(report)
        if self.guard is not None:
            if when not in ("setup", "call"):
                # The test (or this attempt of it) is over; a crashed xdist
                # worker's report has no phase of its own.
                self.guard.journal.entry(record.to_json())
            self.guard.beat()

    def _entry_of(self, nodeid: str) -> dict[str, Any]:
        return self.book.records[nodeid].to_json()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Note the test that starts, should the watchdog have to end the run."""
        if self.guard is not None:
            self.guard.journal.running(nodeid)

    def _unexplained(self, report: pytest.TestReport) -> dict[str, Any]:
        """A report without a finding, such as xdist's report of a crashed worker."""
        if not report.failed:
            return {"classification": "none", "rule": None, "component": None}
        record = self.book.records.get(report.nodeid)
        if record and record.scope and record.scope.scope == QUALIFICATION_CHECK:
            classification, rule = (
                Classification.PRODUCT_FAILURE,
                "qualification_check failed",
            )
        else:
            classification, rule = (
                Classification.INFRA_FAILURE,
                "failed outside a known scope",
            )
        text = (report.longreprtext or "").strip().splitlines()
        return {
            "classification": classification.value,
            "rule": rule,
            "component": None,
            "message": text[-1][:300] if text else None,
        }

    def halt(self, reason: str) -> None:
        self.book.stop(reason)
        super().halt(reason)

    # -- the end --------------------------------------------------------------

    def pytest_keyboard_interrupt(
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> None:
        """Tell Ctrl-C from the stops that pytest-xdist raises as interruptions."""
        self.by_user = type(excinfo.value) is KeyboardInterrupt

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """No test starts before the watchdog watches (it started during
        collection)."""
        if self.guard is None:
            return
        self.guard.journal.collected(self.book.records, self._entry_of)
        try:
            self.guard.wait_ready()
        except LifecycleError as exc:
            self.unguarded = f"the run is unguarded: {exc}"
            pytest.exit(
                f"routerd-qual: infra_failure: {self.unguarded}",
                returncode=QualificationExit.INFRA_FAILURE,
            )
        # What exists now (the modules of jsonschema, pydantic and pendulum, the
        # collected items) lives until the session ends. Left to the cyclic garbage
        # collector, every full collection during the tests would walk it again
        # (measured in docs/performance.md). It is unfrozen when the session
        # finishes.
        gc.freeze()
        self.froze = True

    def pytest_collection_finish(self) -> None:
        """Collection is progress too: a long collection must not look hung."""
        if self.guard is not None:
            self.guard.beat()

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Clean up, set the exit code from the classification, write the result."""
        if self.froze:
            gc.unfreeze()
            self.froze = False
        self.final_classification = self.book.classification()
        self._end_run()
        if self.problems:
            session.exitstatus = QualificationExit.USAGE_ERROR
        session.exitstatus = final_exit(
            session.exitstatus, self.final_classification, by_user=self.by_user
        )
        self.write_result(session.exitstatus)
        self._spend_if_infra()

    def _end_run(self) -> None:
        """Stop the watchdog, run cleanup and inventory; their failure is infra.

        Repairs stay refused until cleanup and inventory are done, as they are when
        the watchdog runs them.
        """
        if self.guard is None:
            deactivate()
            return
        self.exits = self.guard.finish()
        deactivate()
        self.watchdog_abort = self.guard.abort_record()
        if all(r.outcome == "not_run" for r in self.book.records.values()):
            # No test started, so nothing of the run exists: a marker typo or an
            # empty selection does not cost the certification its run.
            self.guard.release_run_id()
        if (
            lifecycle_failed(*self.exits)
            or self.watchdog_abort is not None
            or self.unguarded
        ):
            self.final_classification = most_severe(
                (self.final_classification, Classification.INFRA_FAILURE)
            )

    def _spend_if_infra(self) -> None:
        """After an infra failure the manifest may never certify a run again."""
        if self.final_classification is not Classification.INFRA_FAILURE:
            return
        if self.verdict is None or self.verdict.sha256 is None:
            return
        try:
            Ledger(self.lifecycle.ledger_path).record_spent(
                self.identity.manifest_id,
                self.verdict.sha256,
                self.identity.run_id,
                self.final_classification.value,
                pendulum.now("UTC"),
            )
        except LedgerError as exc:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(
                    f"routerd-qual: the manifest could NOT be recorded as spent: "
                    f"{exc}; do not reuse {self.identity.manifest_id}",
                    red=True,
                )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The routerd qualification section: what failed, why, and what next."""
        if self.verdict is None or not self.verdict.go:
            return
        code = int(self.session.exitstatus) if self.session is not None else 0
        classification = self.final_classification
        terminalreporter.write_sep(
            "=",
            "routerd qualification",
            red=classification is not Classification.NONE,
            green=classification is Classification.NONE and code == 0,
        )
        for line in self.summary_lines(code):
            terminalreporter.write_line(line)

    def summary_lines(self, code: int) -> list[str]:
        """The lines of the summary section, most important first."""
        identity = self.identity
        lines = [
            f"manifest {identity.manifest_id} "
            f"(sha256 {(identity.manifest_sha256 or '')[:12]}), "
            f"run {identity.run_id}, release {identity.release}",
            f"classification: {self.final_classification.value} (exit {code})",
        ]
        if self.problems and not self.problems_printed:
            lines.append(scope_error_message(self.problems))
        failures = self.book.failures()
        if failures and self.config.get_verbosity() >= -1:
            width = max(len(record.classification.value) for record in failures)
            lines.extend(failure_line(record, width) for record in failures)
        if self.guard is not None and lifecycle_failed(*self.exits):
            # Without this line a run whose tests all passed would end infra for
            # no reason the operator can see.
            lines.append(
                f"lifecycle: cleanup exit {self.exits[0]}, inventory exit "
                f"{self.exits[1]}; their logs are in {self.guard.evidence_dir}"
            )
        if self.book.stop_reason:
            reason = self.book.stop_reason.removeprefix("routerd-qual: ")
            lines.append(
                f"stopped: {reason}; {len(self.book.not_run())} test(s) not run"
            )
        if self.guard is not None and self.guard.journal.broken:
            lines.append(
                f"journal: {self.guard.journal.broken}; had the watchdog ended the "
                "run, its result could not have listed the tests"
            )
        lines.append(f"next: {self.next_step(code)}")
        if not self.config.option.collectonly:
            lines.append(f"result: {self.result_path}")
        return lines

    def next_step(self, code: int) -> str:
        """What the operator does now."""
        if self.config.option.collectonly:
            return "the checks were listed, not run: nothing was qualified"
        if self.final_classification is Classification.NONE and code != 0:
            return f"the run did not complete (exit {code}); no verdict on routerd"
        passed = any(r.outcome == "passed" for r in self.book.records.values())
        if self.final_classification is Classification.NONE and not passed:
            return "no check passed (all were skipped): nothing was qualified"
        return NEXT_STEP[self.final_classification]

    def write_result(self, driver_exit: int) -> None:
        """Write the result document (and the CI job summary); once per session.

        A ``--collect-only`` session runs nothing, so it leaves no result that a
        pipeline could read as a qualification.
        """
        if self.result_written:
            return
        self.result_written = True
        if self.config.option.collectonly:
            return
        checks = [preflight_entry(self.verdict)] if self.verdict else []
        checks.extend(self.book.entries())
        document = build_result(
            self.identity,
            classification=self.final_classification,
            started_at=self.started_at,
            finished_at=pendulum.now("UTC"),
            driver_exit=driver_exit,
            checks=checks,
            cleanup_exit=self.exits[0],
            inventory_exit=self.exits[1],
            watchdog_pid=self.guard.watchdog_pid if self.guard else None,
            watchdog_abort=self.watchdog_abort,
        )
        write_atomic(self.result_path, document)
        if self.guard is not None:
            self.guard.mark_result_written()
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            try:
                with Path(step_summary).open("a", encoding="utf-8") as handle:
                    handle.write(markdown_summary(document))
            except OSError as exc:
                # The result is already safe; a job summary is a convenience.
                reporter = self.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(
                        f"routerd-qual: GITHUB_STEP_SUMMARY not written: {exc}"
                    )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Write the result if no earlier hook could (an abort before the end)."""
        try:
            if self.verdict is not None and not self.result_written:
                self._end_run()
                self.write_result(QualificationExit.INTERRUPTED)
        finally:
            deactivate()
            shutil.rmtree(self.stop_directory, ignore_errors=True)
            config.pluginmanager.unregister(self)
