"""The qualification plugin object: registered only when the gate applies.

It drives a qualification session: the preflight before anything else, the verdict
in the terminal header, and the result document at the end. It is a thin shell over
the pure core (:mod:`.preflight`, :mod:`.result`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest

from .exitcodes import Classification, QualificationExit
from .options import list_value, path_value, string_value
from .preflight import Request, Verdict, go_line, refusal_lines, run_preflight
from .result import RunIdentity, build_result, write_atomic


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


class QualificationSession:
    """Gate, observe and record one qualification session.

    On the controller (or a single process) it runs the preflight at session start
    and, on refusal, writes the result and ends the session with exit 10 before any
    test is collected.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = pendulum.now("UTC")
        self.verdict: Verdict | None = None
        self.identity = RunIdentity()
        self.result_path = path_value(config, "--qualification-result")
        self.result_written = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Run the certification preflight before anything else happens."""
        self.started_at = pendulum.now("UTC")
        verdict = run_preflight(build_request(self.config))
        self.verdict = verdict
        self.identity = identity_of(verdict)
        if not verdict.go:
            self._refuse(verdict)

    def _refuse(self, verdict: Verdict) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "routerd-qual: preflight refused", red=True)
            for line in refusal_lines(verdict):
                reporter.write_line(line)
        self.write_result(
            Classification.PREFLIGHT_FAILURE,
            QualificationExit.PREFLIGHT_FAILURE,
            [preflight_entry(verdict)],
        )
        pytest.exit(
            f"routerd-qual: preflight_failure, {len(verdict.reasons)} reason(s); "
            "no test was run",
            returncode=QualificationExit.PREFLIGHT_FAILURE,
        )

    def pytest_report_header(self) -> list[str]:
        """Name the certification the run goes under, with its expiry."""
        if self.verdict is None or not self.verdict.go:
            return []
        return [f"routerd-qual: {go_line(self.verdict)}"]

    def write_result(
        self,
        classification: Classification,
        driver_exit: int,
        checks: list[dict[str, Any]],
    ) -> None:
        """Write the result document, if one was asked for."""
        self.result_written = True
        if self.result_path is None:
            return
        document = build_result(
            self.identity,
            classification=classification,
            started_at=self.started_at,
            finished_at=pendulum.now("UTC"),
            driver_exit=driver_exit,
            checks=checks,
        )
        write_atomic(Path(self.result_path), document)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Leave the plugin manager as it was found."""
        config.pluginmanager.unregister(self)
