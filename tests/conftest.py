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


# Variables of the calling shell that would change what a session under test does:
# the manifest and run ID a CI job exports, its job summary, the example lab's
# switches, and the CI markers that make pytest print untruncated summaries.
OUTSIDE_ENVIRONMENT = (
    "ROUTERD_CERTIFICATION_MANIFEST",
    "ROUTERD_QUALIFICATION_RUN_ID",
    "ROUTERD_LAB_BREAK",
    "ROUTERD_LAB_EVENTS",
    "GITHUB_STEP_SUMMARY",
    "CI",
    "BUILD_NUMBER",
)


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test as if from a plain shell, whatever CI exported."""
    for name in OUTSIDE_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


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
