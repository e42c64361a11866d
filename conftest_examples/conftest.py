"""Lab fixtures of the example qualification suite.

The suite qualifies routerd on the simulated lab-sim/two-leaf lab. This file gives
the tests their lab: the topology (read once, in ``pytest_configure``), the lab
substrate and a routerd stand-in (one per session, and so one per xdist worker);
it parametrizes lab-shaped arguments from the topology, and it puts the substrate
probes first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from routerd_lab import Break, EventLog, Lab, Topology, break_from_environment
from routerd_standin import RouterdClient, serve_routerd

TOPOLOGY_KEY = pytest.StashKey[Topology]()
BREAK_KEY = pytest.StashKey[Break]()

#: The order the checks run in: substrate probes, then the product checks by kind.
PHASES = ("substrate", "readiness", "connectivity_matrix", "provider_action")


def pytest_configure(config: pytest.Config) -> None:
    """Read the topology and the lab break once, before anything is collected."""
    try:
        config.stash[BREAK_KEY] = break_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[TOPOLOGY_KEY] = Topology.load()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which lab the run talks to, and whether it was told to break."""
    topology = config.stash[TOPOLOGY_KEY]
    return (
        f"routerd lab: {topology.environment}/{topology.topology} (simulated), "
        f"break: {config.stash[BREAK_KEY].value}"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize lab-shaped arguments from the topology, so the tests follow it."""
    topology = metafunc.config.stash[TOPOLOGY_KEY]
    parameters: dict[str, Sequence[object]] = {
        "matrix_pair": topology.matrix_pairs(),
        "pve_guest": topology.pve_guests,
        "cloud_node": topology.cloud_nodes,
        "router": topology.with_role("router"),
    }
    for name, values in parameters.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=str)


def phase(item: pytest.Item) -> int:
    """Where ``item`` runs: its index in :data:`PHASES`, unknown kinds last."""
    if item.get_closest_marker("substrate") is not None:
        return PHASES.index("substrate")
    check = item.get_closest_marker("qualification_check")
    if check is None:
        return len(PHASES)
    kind = check.kwargs.get("kind", check.args[0] if check.args else None)
    return PHASES.index(kind) if kind in PHASES else len(PHASES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Probe the substrate before any product check runs.

    A dead substrate found by a probe stops the run as an infra failure before a
    product check could trip over it; the sort is stable, so the file order holds
    within each phase.
    """
    items.sort(key=phase)


@pytest.fixture(scope="session")
def topology(pytestconfig: pytest.Config) -> Topology:
    return pytestconfig.stash[TOPOLOGY_KEY]


@pytest.fixture(scope="session")
def lab_break(pytestconfig: pytest.Config) -> Break:
    """What ``ROUTERD_LAB_BREAK`` told the lab to break."""
    return pytestconfig.stash[BREAK_KEY]


@pytest.fixture(scope="session")
def lab_events() -> EventLog:
    return EventLog.from_environment()


@pytest.fixture(scope="session")
def lab(topology: Topology, lab_break: Break, lab_events: EventLog) -> Lab:
    """The lab substrate."""
    return Lab(topology, lab_break, lab_events)


@pytest.fixture(scope="session")
def routerd(
    topology: Topology, lab_break: Break, lab_events: EventLog
) -> Iterator[RouterdClient]:
    """The routerd under test, served on 127.0.0.1 for the whole session."""
    with serve_routerd(topology, broken=lab_break, events=lab_events) as client:
        yield client
