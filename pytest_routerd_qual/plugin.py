"""The pytest entry point of routerd release qualification (``-p routerd_qual``).

Installed but unused, the plugin only declares its options and markers: the core and
its dependencies load only when a session is a qualification, that is when the ini
file sets ``routerd_qualification = true`` or ``--certification-manifest`` is given.
"""

from __future__ import annotations

import pytest

from .options import add_options, gate_applies

#: The name the active qualification plugin object is registered under.
SESSION_PLUGIN = "routerd_qual_session"

MARKERS = (
    "qualification_check(kind): a routerd product check; kind is readiness, "
    "connectivity_matrix or provider_action. Its failures are product failures "
    "unless a substrate defect caused them.",
    "substrate: a probe of the lab substrate itself (bridges, QGA, config disks, "
    "cloud bootstrap, identity, quota). Its failures are infra failures and stop "
    "the run.",
    "fault_injection(description): the scenario injects a failure on purpose; "
    "routerd's handling of it is product behaviour.",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the qualification options and ini keys."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, and the qualification plugin when the gate applies."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if not gate_applies(config):
        return
    from .session import QualificationSession, QualificationWorker

    if hasattr(config, "workerinput"):
        plugin: object = QualificationWorker(config)
    else:
        plugin = QualificationSession(config)
    config.pluginmanager.register(plugin, SESSION_PLUGIN)
