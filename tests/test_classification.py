"""Each failure is classified as product or infra, and the run stops at infra."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.testing import SampleCertification

RESULT_SCHEMA = json.loads(
    (
        Path(__file__).parent.parent
        / "docs/releases/manifests/release-qualification-result.schema.json"
    ).read_text()
)

Run = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]


def load_result(path: Path) -> dict[str, Any]:
    """Read a result file and check it against the result schema."""
    document: dict[str, Any] = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(
        RESULT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(document)
    return document


@pytest.fixture
def qualify(pytester: pytest.Pytester, sample: SampleCertification) -> Run:
    """Run the suite in ``pytester`` as a qualification and read its result."""
    pytester.makeini("[pytest]\nrouterd_qualification = true\n")

    def run(*args: str, subprocess: bool = False) -> tuple[pytest.RunResult, Any]:
        target = pytester.path / "evidence" / "result.json"
        options = [*sample.pytest_args(), f"--qualification-result={target}", *args]
        if subprocess:
            result = pytester.runpytest_subprocess(*options, timeout=120)
        else:
            result = pytester.runpytest(*options)
        assert not list(target.parent.glob(".result.json.*")), "temporary file left"
        return result, load_result(target)

    return run


def checks_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["nodeid"]: check for check in document["checks"][1:]}


ROUTERD_SUITE = """
import pytest
from pytest_routerd_qual import SubstrateDefect

PAIRS = ["leaf-a:client-b", "leaf-b:client-a", "client-a:client-b"]

@pytest.mark.qualification_check("readiness")
def test_routerd_reports_ready():
    pass

@pytest.mark.qualification_check("readiness")
def test_rendered_config_matches_plan():
    pass

@pytest.mark.qualification_check("connectivity_matrix")
@pytest.mark.parametrize("pair", PAIRS)
def test_matrix_pair_reaches(pair):
    if pair == BROKEN_PAIR:
        raise AssertionError(f"{pair}: no route")

@pytest.mark.qualification_check("provider_action")
def test_fencing_isolates_failed_leaf():
    pass
"""


def test_only_a_matrix_pair_failing_is_a_product_failure(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_routerd="BROKEN_PAIR = 'leaf-b:client-a'\n" + ROUTERD_SUITE
    )
    result, document = qualify()
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    result.assert_outcomes(passed=5, failed=1)
    assert document["classification"] == "product_failure"
    assert document["status"] == "fail"
    assert document["driverExit"] == 1
    check = checks_by_id(document)[
        "test_routerd.py::test_matrix_pair_reaches[leaf-b:client-a]"
    ]
    assert check["classification"] == "product_failure"
    assert check["rule"] == "qualification_check failed"
    assert check["kind"] == "connectivity_matrix"
    assert check["phase"] == "call"
    assert check["message"] == "AssertionError: leaf-b:client-a: no route"
    result.stdout.fnmatch_lines(
        [
            "*= routerd qualification =*",
            "classification: product_failure (exit 1)",
            "  product_failure  -  *test_matrix_pair_reaches[[]leaf-b:client-a] "
            "[[]qualification_check failed, call]",
            "next: routerd failed on a certified substrate*",
        ]
    )


def test_qga_defect_in_the_third_test_stops_the_run(
    pytester: pytest.Pytester, qualify: Run, sample: SampleCertification
) -> None:
    pytester.makepyfile(
        conftest="""
import pytest
from pytest_routerd_qual import SubstrateDefect

class GuestAgent:
    def __init__(self):
        self.calls = 0
    def exec(self, command):
        self.calls += 1
        if self.calls == 3:
            raise SubstrateDefect("qga", "guest agent on pve-leaf-a stopped answering")
        return "ok"

@pytest.fixture(scope="session")
def qga():
    return GuestAgent()
""",
        test_routerd="""
import pytest

@pytest.mark.qualification_check("readiness")
def test_process_running(qga):
    assert qga.exec("pgrep routerd") == "ok"

@pytest.mark.qualification_check("readiness")
def test_status_api(qga):
    assert qga.exec("curl status") == "ok"

@pytest.mark.qualification_check("readiness")
def test_config_validates(qga):
    assert qga.exec("routerd validate") == "ok"

@pytest.mark.qualification_check("connectivity_matrix")
def test_matrix(qga):
    assert qga.exec("ping") == "ok"

@pytest.mark.qualification_check("provider_action")
def test_fencing(qga):
    assert qga.exec("fence") == "ok"
""",
    )
    result, document = qualify()
    assert result.ret == QualificationExit.INFRA_FAILURE
    result.assert_outcomes(passed=2, failed=1)
    assert document["classification"] == "infra_failure"
    assert document["certificationManifestId"] == sample.manifest["manifestId"]
    assert document["runId"] == sample.manifest["run"]["runId"]
    assert document["release"] == "1.4.0"
    assert document["driverExit"] == 11
    checks = checks_by_id(document)
    third = checks["test_routerd.py::test_config_validates"]
    assert third["classification"] == "infra_failure"
    assert third["rule"] == "raised SubstrateDefect"
    assert third["component"] == "qga"
    for never in ("test_routerd.py::test_matrix", "test_routerd.py::test_fencing"):
        assert checks[never]["outcome"] == "not_run"
        assert checks[never]["rule"] == "not run: the run stopped at an infra failure"
        assert checks[never]["classification"] == "none"
    result.stdout.fnmatch_lines(
        [
            "classification: infra_failure (exit 11)",
            "  infra_failure  qga  *test_config_validates [[]raised SubstrateDefect, "
            "call]",
            "stopped: infra_failure in test_routerd.py::test_config_validates (qga): "
            "raised SubstrateDefect; the run stops; 2 test(s) not run",
            "next: stop. The substrate is not trustworthy: do not repair it in place.*",
        ]
    )


def test_first_check_entry_ties_the_result_to_the_manifest_bytes(
    pytester: pytest.Pytester, qualify: Run, sample: SampleCertification
) -> None:
    pytester.makepyfile(test_routerd="BROKEN_PAIR = None\n" + ROUTERD_SUITE)
    result, document = qualify()
    assert result.ret == QualificationExit.OK
    assert document["status"] == "pass"
    assert document["classification"] == "none"
    first = document["checks"][0]
    assert first["nodeid"] == "routerd-qual::certification-preflight"
    assert (
        first["manifestSha256"]
        == hashlib.sha256(sample.manifest_path.read_bytes()).hexdigest()
    )
    assert len(document["checks"]) == 7
    assert document["cleanupExit"] == document["inventoryExit"] == -1
    # The watchdog guarded the run and was stopped with it.
    assert document["watchdogPid"] >= 1
    with pytest.raises(ProcessLookupError):
        os.kill(document["watchdogPid"], 0)
    assert document["watchdogAbort"] is None


def test_failing_substrate_probe_is_an_infra_failure(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_lab="""
import pytest

@pytest.mark.substrate
def test_capture_bridge_exists():
    assert False, "vmbr9 missing"

@pytest.mark.qualification_check("readiness")
def test_never_started():
    pass
"""
    )
    result, document = qualify("-p", "no:randomly")
    assert result.ret == QualificationExit.INFRA_FAILURE
    check = checks_by_id(document)["test_lab.py::test_capture_bridge_exists"]
    assert check["rule"] == "substrate-scoped test failed"
    assert check["scope"] == "substrate"
    assert checks_by_id(document)["test_lab.py::test_never_started"]["outcome"] == (
        "not_run"
    )


@pytest.mark.parametrize(
    ("body", "classification", "rule"),
    [
        (
            "try:\n        raise SubstrateDefect('bridge', 'vmbr1 down')\n"
            "    except SubstrateDefect as exc:\n"
            "        raise AssertionError('matrix pair unreachable') from exc",
            "infra_failure",
            "raised SubstrateDefect",
        ),
        (
            "try:\n        raise SubstrateDefect('bridge', 'vmbr1 down')\n"
            "    except SubstrateDefect:\n"
            "        assert False, 'matrix pair unreachable'",
            "infra_failure",
            "raised SubstrateDefect",
        ),
        (
            "try:\n        raise SubstrateDefect('bridge', 'vmbr1 down')\n"
            "    except SubstrateDefect:\n"
            "        raise AssertionError('unrelated') from None",
            "product_failure",
            "qualification_check failed",
        ),
        (
            "raise ExceptionGroup('many', [ValueError('x'), "
            "SubstrateDefect('quota', 'no vCPU quota')])",
            "infra_failure",
            "raised SubstrateDefect",
        ),
        (
            "try:\n        raise SubstrateDefect('qga', 'silent')\n"
            "    except SubstrateDefect:\n"
            "        pytest.skip('lab not ready')",
            "infra_failure",
            "raised SubstrateDefect",
        ),
        (
            "try:\n        raise SubstrateDefect('qga', 'silent')\n"
            "    except SubstrateDefect:\n"
            "        pytest.xfail('known flake')",
            "infra_failure",
            "raised SubstrateDefect",
        ),
    ],
    ids=["cause", "context", "suppressed-context", "group", "skip", "xfail"],
)
def test_defect_anywhere_in_the_printed_chain_is_an_infra_failure(
    pytester: pytest.Pytester,
    qualify: Run,
    body: str,
    classification: str,
    rule: str,
) -> None:
    pytester.makepyfile(
        test_wrapped=f"""
import pytest
from pytest_routerd_qual import SubstrateDefect

@pytest.mark.qualification_check("connectivity_matrix")
def test_pair():
    {body}
"""
    )
    if "ExceptionGroup" in body and sys.version_info < (3, 11):
        pytest.skip("ExceptionGroup is built in from Python 3.11")
    result, document = qualify()
    check = checks_by_id(document)["test_wrapped.py::test_pair"]
    assert check["classification"] == classification
    assert check["rule"] == rule
    expected = (
        QualificationExit.INFRA_FAILURE
        if classification == "infra_failure"
        else QualificationExit.PRODUCT_FAILURE
    )
    assert result.ret == expected


@pytest.mark.parametrize("fixture_scope", ["function", "class", "module", "session"])
@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_defect_in_a_fixture_of_any_scope_is_an_infra_failure(
    pytester: pytest.Pytester, qualify: Run, fixture_scope: str, phase: str
) -> None:
    setup_raise = "raise SubstrateDefect('config-disk', 'NoCloud seed unreadable')"
    pytester.makepyfile(
        test_fixture=f"""
import pytest
from pytest_routerd_qual import SubstrateDefect

@pytest.fixture(scope="{fixture_scope}")
def lab():
    {setup_raise if phase == "setup" else "pass"}
    yield "lab"
    {setup_raise if phase == "teardown" else "pass"}

@pytest.mark.qualification_check("readiness")
def test_uses_lab(lab):
    pass
"""
    )
    result, document = qualify()
    assert result.ret == QualificationExit.INFRA_FAILURE
    check = checks_by_id(document)["test_fixture.py::test_uses_lab"]
    assert check["classification"] == "infra_failure"
    assert check["outcome"] == "error"
    assert check["phase"] == phase
    assert check["component"] == "config-disk"


@pytest.mark.parametrize(
    ("marker", "classification", "code"),
    [
        ('qualification_check("readiness")', "product_failure", 1),
        ("substrate", "infra_failure", 11),
    ],
)
def test_setup_error_that_is_no_defect_follows_the_test_scope(
    pytester: pytest.Pytester,
    qualify: Run,
    marker: str,
    classification: str,
    code: int,
) -> None:
    pytester.makepyfile(
        test_setup=f"""
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture failed")

@pytest.mark.{marker}
def test_with_broken_fixture(broken):
    pass
"""
    )
    result, document = qualify()
    assert result.ret == code
    check = checks_by_id(document)["test_setup.py::test_with_broken_fixture"]
    assert check["classification"] == classification
    assert check["phase"] == "setup"
    assert check["outcome"] == "error"
    assert check["message"] == "RuntimeError: fixture failed"


def test_lab_sdk_exceptions_listed_in_the_ini_are_substrate_defects(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    pytester.makeini(
        """
        [pytest]
        routerd_qualification = true
        substrate_exceptions =
            labsdk:QgaTimeout
            labsdk:Quota.Exhausted
        pythonpath = .
        """
    )
    pytester.makepyfile(
        labsdk="""
class QgaTimeout(Exception):
    component = "qga"

class Quota:
    class Exhausted(Exception):
        pass
""",
        test_sdk="""
import pytest
import labsdk

def assert_routerd_status(ok):
    try:
        raise labsdk.QgaTimeout("guest-exec timed out")
    except labsdk.QgaTimeout as exc:
        raise AssertionError("routerd status unknown") from exc

@pytest.mark.qualification_check("readiness")
def test_status():
    assert_routerd_status(True)
""",
    )
    target = pytester.path / "result.json"
    result = pytester.runpytest(
        *sample.pytest_args(), f"--qualification-result={target}"
    )
    assert result.ret == QualificationExit.INFRA_FAILURE
    check = checks_by_id(load_result(target))["test_sdk.py::test_status"]
    assert check["rule"] == "listed in substrate_exceptions"
    assert check["component"] == "qga"


def test_unusable_substrate_exception_entry_is_a_usage_error(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    pytester.makeini(
        "[pytest]\nrouterd_qualification = true\n"
        "substrate_exceptions = nosuchmodule:Error\n"
    )
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest(*sample.pytest_args())
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini substrate_exceptions: 'nosuchmodule:Error' cannot be imported*"]
    )


def test_unscoped_and_doubly_scoped_tests_stop_the_session_at_collection(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_scopes="""
import pytest

def test_no_scope():
    pass

@pytest.mark.substrate
@pytest.mark.qualification_check("readiness")
def test_two_scopes():
    pass

@pytest.mark.qualification_check("throughput")
def test_unknown_kind():
    pass

@pytest.mark.substrate
def test_fine():
    pass
"""
    )
    result, document = qualify()
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: routerd-qual: 3 test(s) lack exactly one qualification scope; "
            "no test was run:",
            "  test_scopes.py::test_no_scope: has no scope: mark it "
            "qualification_check(kind) or substrate",
            "  test_scopes.py::test_two_scopes: has both qualification_check and "
            "substrate; keep one",
            "  test_scopes.py::test_unknown_kind: qualification_check kind "
            "'throughput' is unknown; use one of readiness, connectivity_matrix, "
            "provider_action",
        ]
    )
    assert "passed" not in result.stdout.str()
    assert document["driverExit"] == 4
    assert document["status"] == "fail"
    assert {c["outcome"] for c in document["checks"][1:]} == {"not_run"}


def test_fault_injection_is_recorded_and_stays_product_behaviour(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_faults="""
import pytest

@pytest.mark.qualification_check("provider_action")
@pytest.mark.fault_injection("kill the active leaf's routerd")
def test_fencing_after_leaf_crash():
    assert False, "standby did not take over"
"""
    )
    result, document = qualify()
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    check = checks_by_id(document)["test_faults.py::test_fencing_after_leaf_crash"]
    assert check["faultInjection"] == "kill the active leaf's routerd"
    assert check["classification"] == "product_failure"


def test_markers_are_registered_and_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.qualification_check(kind): a routerd product check;*",
            "@pytest.mark.substrate: a probe of the lab substrate itself*",
            "@pytest.mark.fault_injection(description): the scenario injects*",
        ]
    )


def test_junit_report_carries_the_classification_of_each_case(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_routerd="BROKEN_PAIR = 'leaf-a:client-b'\n" + ROUTERD_SUITE
    )
    junit = pytester.path / "junit.xml"
    result, _ = qualify(f"--junitxml={junit}")
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    cases = {
        case.get("name"): {
            prop.get("name"): prop.get("value") for prop in case.iter("property")
        }
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert cases["test_matrix_pair_reaches[leaf-a:client-b]"] == {
        "classification": "product_failure",
        "check": "connectivity_matrix",
        "classification_rule": "qualification_check failed",
    }
    assert cases["test_routerd_reports_ready"] == {
        "classification": "none",
        "check": "readiness",
    }


def test_exitfirst_keeps_working_and_the_rest_is_not_run(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_routerd="BROKEN_PAIR = 'leaf-a:client-b'\n" + ROUTERD_SUITE
    )
    result, document = qualify("-x")
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    outcomes = [c["outcome"] for c in document["checks"][1:]]
    assert outcomes == ["passed", "passed", "failed", "not_run", "not_run", "not_run"]


def test_ctrl_c_still_writes_the_result(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_interrupt="""
import pytest

@pytest.mark.qualification_check("readiness")
def test_interrupted():
    raise KeyboardInterrupt

@pytest.mark.qualification_check("readiness")
def test_never():
    pass
"""
    )
    result, document = qualify(subprocess=True)
    assert result.ret == QualificationExit.INTERRUPTED
    assert document["driverExit"] == 2
    assert document["status"] == "fail"


def test_internal_error_still_writes_the_result(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makeconftest(
        "def pytest_runtest_logfinish(nodeid):\n    raise RuntimeError('boom')\n"
    )
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.substrate\ndef test_a():\n    pass\n"
    )
    result, document = qualify()
    assert result.ret == QualificationExit.INTERNAL_ERROR
    assert document["driverExit"] == 3
    assert document["status"] == "fail"


def test_quiet_runs_still_show_the_verdict(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(test_routerd="BROKEN_PAIR = None\n" + ROUTERD_SUITE)
    result, _ = qualify("-q")
    assert result.ret == QualificationExit.OK
    result.stdout.fnmatch_lines(
        ["classification: none (exit 0)", "next: routerd qualified*"]
    )


def test_github_job_summary_gets_a_markdown_summary(
    pytester: pytest.Pytester, qualify: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(
        test_routerd="BROKEN_PAIR = 'leaf-a:client-b'\n" + ROUTERD_SUITE
    )
    result, document = qualify()
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    text = summary.read_text()
    assert text.startswith("earlier step\n### routerd qualification: product_failure")
    assert (
        "| product_failure | `test_routerd.py::test_matrix_pair_reaches"
        "[leaf-a:client-b]` | - | qualification_check failed |"
    ) in text
    assert f"manifest `{document['certificationManifestId']}`" in text


def test_collect_only_lists_the_checks_without_spending_the_run(
    pytester: pytest.Pytester, qualify: Run, sample: SampleCertification
) -> None:
    pytester.makepyfile(test_routerd="BROKEN_PAIR = None\n" + ROUTERD_SUITE)
    target = pytester.path / "evidence" / "result.json"
    listing = pytester.runpytest(
        *sample.pytest_args(), f"--qualification-result={target}", "--collect-only"
    )
    assert listing.ret == QualificationExit.OK
    listing.stdout.fnmatch_lines(
        [
            "*<Function test_routerd_reports_ready>",
            "next: the checks were listed, not run: nothing was qualified",
        ]
    )
    assert not target.exists(), "a listing must not leave a result to read as a pass"
    result, document = qualify()
    assert result.ret == QualificationExit.OK
    assert document["status"] == "pass"


def test_session_where_no_test_started_leaves_the_run_id_usable(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(test_typo="def test_unscoped():\n    pass\n")
    result, _ = qualify()
    assert result.ret == QualificationExit.USAGE_ERROR
    pytester.makepyfile(
        test_typo="import pytest\n\n@pytest.mark.substrate\ndef test_a():\n    pass\n"
    )
    result, document = qualify()
    assert result.ret == QualificationExit.OK
    assert document["status"] == "pass"


def test_run_whose_every_check_was_skipped_does_not_pass(
    pytester: pytest.Pytester, qualify: Run
) -> None:
    pytester.makepyfile(
        test_skipped="""
import pytest

@pytest.mark.qualification_check("readiness")
def test_not_today():
    pytest.skip("lab busy")
"""
    )
    result, document = qualify()
    assert result.ret == QualificationExit.OK
    assert document["status"] == "fail"
    assert document["classification"] == "none"
    result.stdout.fnmatch_lines(
        ["next: no check passed (all were skipped): nothing was qualified"]
    )


GC_SUITE = """
import gc
import pytest

@pytest.mark.qualification_check("readiness")
def test_frozen_while_tests_run():
    assert gc.get_freeze_count() > 0
"""


@pytest.mark.parametrize("ending", ["passes", "fails"])
def test_objects_of_the_session_start_are_frozen_for_the_tests_only(
    pytester: pytest.Pytester, qualify: Run, ending: str
) -> None:
    body = GC_SUITE if ending == "passes" else GC_SUITE + "    assert False\n"
    pytester.makepyfile(test_gc=body)
    assert gc.get_freeze_count() == 0
    result, document = qualify()
    assert gc.get_freeze_count() == 0  # unfrozen when the session ended
    expected = "none" if ending == "passes" else "product_failure"
    assert document["classification"] == expected
    result.assert_outcomes(
        passed=int(ending == "passes"), failed=int(ending == "fails")
    )
