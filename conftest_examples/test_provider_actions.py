"""Provider actions and fencing: what routerd does through PVE and AWS.

The faults injected here are part of the scenario (``fault_injection``): routerd's
handling of them is product behaviour, judged on a substrate that stays certified.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from routerd_lab import Break, EventLog, Topology
from routerd_standin import ApiError, RouterdClient, serve_routerd

pytestmark = pytest.mark.qualification_check("provider_action")

REFLECTOR_DOWN = "route reflector pve-rr-a stops sending heartbeats"


@pytest.fixture(scope="module")
def isolated_routerd(
    topology: Topology, lab_break: Break, lab_events: EventLog
) -> Iterator[RouterdClient]:
    """A routerd of this module's own, so injected faults never reach the matrix."""
    with serve_routerd(topology, broken=lab_break, events=lab_events) as client:
        yield client


@pytest.fixture(autouse=True)
def _healthy_fabric(isolated_routerd: RouterdClient) -> None:
    # Each test starts from a fabric without faults: under xdist the tests of this
    # module may run on different workers, in any order.
    isolated_routerd.reset()


def _routers(topology: Topology) -> list[str]:
    return [node.name for node in topology.with_role("router")]


@pytest.mark.fault_injection(REFLECTOR_DOWN)
def test_failed_route_reflector_is_fenced(
    isolated_routerd: RouterdClient, topology: Topology
) -> None:
    isolated_routerd.inject_fault("route-reflector-down", "pve-rr-a")
    actions = isolated_routerd.actions()
    assert [(a["provider"], a["action"], a["target"]) for a in actions] == [
        ("pve", "fence", "pve-rr-a")
    ]
    for router in _routers(topology):
        peers = isolated_routerd.peers(router)
        assert peers == {"pve-rr-a": "fenced", "pve-rr-b": "established"}


@pytest.mark.fault_injection(REFLECTOR_DOWN)
def test_routes_survive_a_fenced_route_reflector(
    isolated_routerd: RouterdClient, topology: Topology
) -> None:
    before = {r: isolated_routerd.prefixes(r) for r in _routers(topology)}
    isolated_routerd.inject_fault("route-reflector-down", "pve-rr-a")
    after = {r: isolated_routerd.prefixes(r) for r in _routers(topology)}
    assert after == before
    sources = {
        tuple(route["learnedFrom"])
        for router in _routers(topology)
        for route in isolated_routerd.routes(router)
    }
    assert sources == {("pve-rr-b",)}


@pytest.mark.fault_injection(REFLECTOR_DOWN)
def test_last_route_reflector_is_never_fenced(isolated_routerd: RouterdClient) -> None:
    isolated_routerd.inject_fault("route-reflector-down", "pve-rr-a")
    with pytest.raises(ApiError, match="pve-rr-b is the last route reflector") as no:
        isolated_routerd.provider_action("pve", "fence", "pve-rr-b")
    assert no.value.status == 409
    assert isolated_routerd.peers("pve-leaf-a")["pve-rr-b"] == "established"


def test_publish_routes_programs_the_aws_route_table(
    isolated_routerd: RouterdClient, topology: Topology
) -> None:
    answer = isolated_routerd.provider_action("aws", "publish-routes", "aws-edge")
    others = [n.prefix for n in topology.with_role("router") if n.name != "aws-edge"]
    assert answer["routeTable"] == others
