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


#: Ini keys that a command line may not weaken: ``-o`` may switch them on, not off.
GUARDED_INI = ("routerd_qualification", "qualification_require_lifecycle")
#: Ini keys that a command line may not override at all.
SEALED_INI = ("substrate_exceptions",)
_TRUE = ("1", "true", "yes", "y", "on", "t")


def refuse_weakening_overrides(config: pytest.Config) -> None:
    """Fail closed: ``-o`` cannot switch the gate or a policy setting off."""
    for entry in config.getoption("override_ini") or ():
        key, _, value = str(entry).partition("=")
        key = key.strip()
        weakens = key in SEALED_INI or (
            key in GUARDED_INI and value.strip().lower() not in _TRUE
        )
        if weakens:
            raise pytest.UsageError(
                f"routerd-qual: -o {entry} is refused: the qualification policy is "
                "declared by the suite's ini file and cannot be weakened from the "
                "command line"
            )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, and the qualification plugin when the gate applies."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    refuse_weakening_overrides(config)
    if not gate_applies(config):
        return
    if config.pluginmanager.is_blocked(SESSION_PLUGIN):
        raise pytest.UsageError(
            f"routerd-qual: -p no:{SESSION_PLUGIN} is refused: a qualification "
            "session cannot run without its gate"
        )
    plugin: object
    if hasattr(config, "workerinput"):
        from .worker import QualificationWorker

        plugin = QualificationWorker(config)
    else:
        from .session import QualificationSession

        plugin = QualificationSession(config)
    config.pluginmanager.register(plugin, SESSION_PLUGIN)
