"""routerd readiness: the process and its status API on the certified lab."""

from __future__ import annotations

import pytest
from routerd_lab import Node, Topology
from routerd_standin import RouterdClient

pytestmark = pytest.mark.qualification_check("readiness")


def test_routerd_reports_ready(routerd: RouterdClient) -> None:
    assert routerd.status()["state"] == "ready"


def test_routerd_runs_the_release_under_test(
    routerd: RouterdClient, topology: Topology
) -> None:
    assert routerd.status()["version"] == topology.release


def test_router_peers_with_every_route_reflector(
    routerd: RouterdClient, topology: Topology, router: Node
) -> None:
    reflectors = [node.name for node in topology.with_role("route-reflector")]
    assert routerd.peers(router.name) == dict.fromkeys(reflectors, "established")
