"""The connectivity matrix: every client reaches every other client via routerd.

The pairs come from topology.json (see ``pytest_generate_tests`` in conftest.py).
A pair that is not delivered is a plain assertion failure: on a certified
substrate, that is a routerd product failure. A guest agent that stops answering
while the probe starts raises the lab SDK's GuestAgentTimeout instead, which
pytest.ini lists under ``substrate_exceptions``: an infra failure.
"""

from __future__ import annotations

import pytest
from routerd_lab import Lab, Pair
from routerd_standin import RouterdClient

pytestmark = pytest.mark.qualification_check("connectivity_matrix")


def test_pair_is_reachable(lab: Lab, routerd: RouterdClient, matrix_pair: Pair) -> None:
    probe = lab.probe(matrix_pair, routerd)
    assert probe.delivered, probe.detail
