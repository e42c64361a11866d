"""Shared scenarios: a sample certification and a suite that runs under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_routerd_qual.testing import SampleCertification, write_sample_certification

pytest_plugins = ["pytester"]

SCOPED_SUITE = """
import pytest

@pytest.mark.qualification_check("readiness")
def test_routerd_answers_status():
    pass

@pytest.mark.substrate
def test_qga_answers():
    pass
"""


@pytest.fixture
def sample(tmp_path: Path) -> SampleCertification:
    """A passing certification of lab-sim/two-leaf on pve and aws, valid for 1h."""
    return write_sample_certification(tmp_path / "lab")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A qualification suite of two scoped, passing tests."""
    pytester.makeini("[pytest]\nrouterd_qualification = true\n")
    pytester.makepyfile(test_suite=SCOPED_SUITE)
    return pytester
