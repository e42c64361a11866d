"""Installed but idle: a suite that is not a qualification pays nothing for the plugin.

The import checks run pytest in a fresh process: in this one the core is already
imported by other tests, so ``sys.modules`` here proves nothing.
"""

from __future__ import annotations

import json

import pytest

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.testing import SampleCertification

HEAVY_MODULES = (
    "jsonschema",
    "pydantic",
    "pendulum",
    "pytest_routerd_qual.session",
    "pytest_routerd_qual.preflight",
    "pytest_routerd_qual.model",
    "pytest_routerd_qual.schema",
)
PLUGIN_MODULE = "pytest_routerd_qual.plugin"
RECORD = "imported.json"

RECORDING_CONFTEST = f"""
import json
import sys

WATCHED = {[*HEAVY_MODULES, PLUGIN_MODULE]!r}


def pytest_sessionfinish(session):
    loaded = sorted(name for name in WATCHED if name in sys.modules)
    (session.config.rootpath / {RECORD!r}).write_text(json.dumps(loaded))
"""

MARKED_SUITE = """
import pytest

@pytest.mark.qualification_check("readiness")
def test_routerd_answers_status():
    pass

@pytest.mark.substrate
def test_qga_answers():
    pass

@pytest.mark.fault_injection("link down between leaf-a and rr-a")
def test_routerd_reroutes():
    pass
"""

QUALIFICATION_SUITE = """
import pytest

@pytest.mark.qualification_check("readiness")
def test_routerd_answers_status():
    pass
"""


@pytest.fixture
def marked_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A plain suite that uses the three markers and records what it imported."""
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_marked=MARKED_SUITE)
    return pytester


def imported(pytester: pytest.Pytester) -> set[str]:
    loaded: list[str] = json.loads((pytester.path / RECORD).read_text())
    return set(loaded)


def test_plain_run_imports_the_plugin_but_not_its_core(
    marked_suite: pytest.Pytester,
) -> None:
    result = marked_suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3)
    assert imported(marked_suite) == {PLUGIN_MODULE}


def test_qualification_run_imports_the_core(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_qualification=QUALIFICATION_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *sample.pytest_args()
    )
    assert result.ret == QualificationExit.OK
    result.stdout.fnmatch_lines(["routerd-qual: certification * may start"])
    assert imported(pytester) == {*HEAVY_MODULES, PLUGIN_MODULE}


def test_markers_are_listed_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.qualification_check(kind): a routerd product check; kind is "
            "readiness, connectivity_matrix or provider_action.*",
            "@pytest.mark.substrate: a probe of the lab substrate itself*",
            "@pytest.mark.fault_injection(description): the scenario injects a "
            "failure on purpose*",
        ]
    )


# The strict-markers runs need a fresh process: pytest.mark caches every marker name
# it has seen, so in this process the markers the outer session registered would
# pass --strict-markers whether or not the inner run registers them.


def test_markers_pass_strict_markers_in_a_plain_run(
    marked_suite: pytest.Pytester,
) -> None:
    result = marked_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers"
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("routerd-qual: *")


def test_disabled_plugin_leaves_the_markers_unknown_to_strict_markers(
    marked_suite: pytest.Pytester,
) -> None:
    result = marked_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers", "-p", "no:routerd_qual"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*'qualification_check' not found in `markers` configuration option*"]
    )


def test_disabled_plugin_makes_its_options_unknown(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:routerd_qual", f"--certification-manifest={sample.manifest_path}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*error: unrecognized arguments: "
            f"--certification-manifest={sample.manifest_path}"
        ]
    )


def test_disabled_plugin_is_absent_from_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers", "-p", "no:routerd_qual")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("@pytest.mark.qualification_check*")
    result.stdout.fnmatch_lines(["@pytest.mark.skip(reason=None):*"])


@pytest.fixture
def requiring_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A plain suite whose ini requires the plugin by its distribution name."""
    pytester.makeini("[pytest]\nrequired_plugins = pytest-routerd-qual\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    return pytester


def test_required_plugins_is_satisfied_by_the_installed_plugin(
    requiring_suite: pytest.Pytester,
) -> None:
    result = requiring_suite.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)


def test_required_plugins_refuses_to_run_when_the_plugin_is_disabled(
    requiring_suite: pytest.Pytester,
) -> None:
    result = requiring_suite.runpytest("-p", "no:routerd_qual")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        result.stderr.str().strip()
        == "ERROR: Missing required plugins: pytest-routerd-qual"
    )
    assert result.outlines == []
