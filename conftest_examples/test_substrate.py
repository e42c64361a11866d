"""Substrate probes: is the certified lab still the lab that was certified?

They are marked ``substrate`` and run first (see conftest.py). Any failure here,
even a plain assertion, is an infra failure: the run stops, and the lab goes back
to certification instead of being repaired in place.
"""

from __future__ import annotations

import pytest
from routerd_lab import Lab, Node, Topology

pytestmark = pytest.mark.substrate


def test_underlay_bridge_forwards_frames(lab: Lab, topology: Topology) -> None:
    assert lab.bridge_forwards(topology.underlay_bridge)


def test_guest_agent_answers(lab: Lab, pve_guest: Node) -> None:
    # The helper raises SubstrateDefect("qga", ...) itself, so that it is an infra
    # failure wherever it is called from, not only from a substrate probe.
    lab.require_guest_agent(pve_guest.name)


def test_cloud_instance_finished_bootstrap(lab: Lab, cloud_node: Node) -> None:
    lab.require_cloud_bootstrap(cloud_node.name)
