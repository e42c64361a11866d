"""The plugin on a pytest-xdist worker.

A worker classifies where the exceptions are and starts no test after the run's
stop; the controller decides everything else. This module imports neither the
manifest model nor the schema: a worker never reads the manifest, and it should not
pay for what it does not use.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from .exitcodes import QualificationExit
from .observe import RunObserver, StopSignal

#: The key of the controller's message to its xdist workers.
WORKER_INPUT = "routerd_qual"
#: The keys of the workers' answers in ``workeroutput``.
WORKER_SCOPES = "routerd_qual_scopes"
WORKER_PROBLEMS = "routerd_qual_problems"


class QualificationWorker(RunObserver):
    """The plugin on a pytest-xdist worker: classify here, decide on the controller.

    The worker never reads the manifest (it may run on another host); it takes the
    controller's verdict, refuses to run without one, and reports its collection
    scopes and refusals back through ``workeroutput``.
    """

    def __init__(self, config: pytest.Config) -> None:
        message = json.loads(config.workerinput.get(WORKER_INPUT, "{}"))  # type: ignore[attr-defined]
        self.go = bool(message.get("go"))
        stop_file = message.get("stopFile")
        super().__init__(
            config, StopSignal(Path(stop_file) if stop_file else None, watch=True)
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Refuse to run any test without the controller's go."""
        self.session = session
        if not self.go:
            pytest.exit(
                "routerd-qual: this worker has no preflight verdict",
                returncode=QualificationExit.PREFLIGHT_FAILURE,
            )

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        super().pytest_collection_modifyitems(items)
        self._output()[WORKER_SCOPES] = json.dumps(
            {nodeid: scope.to_json() for nodeid, scope in self.scopes.items()}
        )

    def refuse_collection(self, items: list[pytest.Item], problems: list[str]) -> None:
        # Raising here would crash the worker; the controller reports the refusal.
        self._output()[WORKER_PROBLEMS] = json.dumps(problems)
        items.clear()

    def _output(self) -> dict[str, Any]:
        return self.config.workeroutput  # type: ignore[attr-defined,no-any-return]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        with contextlib.suppress(ValueError):
            config.pluginmanager.unregister(self)
