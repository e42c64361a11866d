"""The gate, the classification, the stop and the result hold under pytest-xdist,
pytest-rerunfailures and pytest-timeout exactly as in a single process."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.testing import SampleCertification

from .test_classification import checks_by_id, load_result

pytest.importorskip("xdist")

SLOW_SUITE = """
import os, time
import pytest
from pytest_routerd_qual import SubstrateDefect

LOG = os.environ["STARTS_LOG"]

@pytest.fixture(autouse=True)
def log_start(request):
    with open(LOG, "a") as handle:
        handle.write(f"{request.node.nodeid} {time.time()}\\n")

@pytest.mark.substrate
def test_00_bridge():
    time.sleep(0.3)
    raise SubstrateDefect("bridge", "vmbr1 lost its uplink")

@pytest.mark.qualification_check("connectivity_matrix")
@pytest.mark.parametrize("pair", range(30))
def test_pair(pair):
    time.sleep(0.2)
"""


@pytest.fixture
def distributed(
    pytester: pytest.Pytester,
    sample: SampleCertification,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """Run the suite in ``pytester`` as a qualification in a subprocess."""
    pytester.makeini("[pytest]\nrouterd_qualification = true\n")
    starts = pytester.path / "starts.log"
    monkeypatch.setenv("STARTS_LOG", str(starts))
    # When these tests themselves run under xdist, the sessions they start are
    # controllers all the same.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
        target = pytester.path / "result.json"
        result = pytester.runpytest_subprocess(
            *sample.pytest_args(),
            f"--qualification-result={target}",
            "-p",
            "no:randomly",
            *args,
            timeout=180,
        )
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
        return result, load_result(target)

    return run


def started(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "starts.log"
    return (
        [line.split()[0] for line in log.read_text().splitlines()]
        if log.exists()
        else []
    )


def test_refusal_under_xdist_starts_no_worker_and_writes_the_result(
    pytester: pytest.Pytester, distributed: Any
) -> None:
    pytester.makepyfile(test_slow=SLOW_SUITE)
    result, document = distributed("-n", "2", "--qualification-topology=other")
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    assert "workers" not in result.stdout.str()
    assert started(pytester) == []
    assert document["classification"] == "preflight_failure"
    assert document["driverExit"] == 10


@pytest.mark.parametrize(
    "dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"]
)
def test_first_infra_failure_on_a_worker_stops_every_worker(
    pytester: pytest.Pytester, distributed: Any, dist: str
) -> None:
    pytester.makepyfile(test_slow=SLOW_SUITE)
    result, document = distributed("-n", "2", f"--dist={dist}")
    assert result.ret == QualificationExit.INFRA_FAILURE
    assert document["classification"] == "infra_failure"
    assert document["driverExit"] == 11
    checks = checks_by_id(document)
    assert len(checks) == 31
    ran = set(started(pytester))
    not_run = {nodeid for nodeid, c in checks.items() if c["outcome"] == "not_run"}
    # A test that never started is recorded as not run, and nothing else is.
    assert not_run == set(checks) - ran
    # 30 slow tests over two workers take 3 s; the stop comes after 0.3 s.
    assert len(not_run) >= 20, f"{len(ran)} tests started"
    for nodeid in not_run:
        assert checks[nodeid]["rule"] == "not run: the run stopped at an infra failure"
    assert checks["test_slow.py::test_00_bridge"]["component"] == "bridge"


def test_workers_classify_and_the_controller_alone_writes_the_result(
    pytester: pytest.Pytester, distributed: Any
) -> None:
    pytester.makeconftest(
        """
import os
import pytest_routerd_qual.session as session

_write = session.write_atomic

def counted(path, document):
    with open(os.environ["STARTS_LOG"] + ".writes", "a") as handle:
        handle.write(os.environ.get("PYTEST_XDIST_WORKER", "controller") + "\\n")
    _write(path, document)

session.write_atomic = counted
"""
    )
    pytester.makepyfile(
        test_mixed="""
import pytest

@pytest.mark.qualification_check("connectivity_matrix")
@pytest.mark.parametrize("pair", range(6))
def test_pair(pair):
    assert pair != 4, "pair 4 lost its route"
"""
    )
    result, document = distributed("-n", "2")
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    writes = (pytester.path / "starts.log.writes").read_text().split()
    assert writes == ["controller"]
    check = checks_by_id(document)["test_mixed.py::test_pair[4]"]
    assert check["classification"] == "product_failure"
    assert check["message"] == "AssertionError: pair 4 lost its route"


def test_unscoped_tests_under_xdist_are_a_usage_error_not_a_crash(
    pytester: pytest.Pytester, distributed: Any
) -> None:
    pytester.makepyfile(
        test_scopes="def test_unscoped():\n    pass\n\n"
        "import pytest\n\n@pytest.mark.substrate\ndef test_ok():\n    pass\n"
    )
    result, document = distributed("-n", "2")
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [
            "routerd-qual: 1 test(s) lack exactly one qualification scope; no test "
            "was run:",
            "  test_scopes.py::test_unscoped: has no scope:*",
        ]
    )
    assert document["driverExit"] == 4


def test_auto_worker_count_and_maxfail_keep_their_meaning(
    pytester: pytest.Pytester, distributed: Any
) -> None:
    pytester.makepyfile(
        test_matrix="""
import pytest

@pytest.mark.qualification_check("connectivity_matrix")
@pytest.mark.parametrize("pair", range(8))
def test_pair(pair):
    assert pair % 2 == 0
"""
    )
    result, document = distributed("-n", "auto", "--maxfail=1")
    assert result.ret == QualificationExit.PRODUCT_FAILURE
    assert document["classification"] == "product_failure"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_flaky_check_that_passes_on_rerun_is_recorded_with_its_reruns(
    pytester: pytest.Pytester, distributed: Any, workers: str
) -> None:
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(
        test_flaky="""
import os
import pytest

@pytest.mark.qualification_check("readiness")
def test_status_settles():
    marker = os.environ["STARTS_LOG"] + ".flaky"
    if not os.path.exists(marker):
        open(marker, "w").close()
        assert False, "status not settled yet"
"""
    )
    result, document = distributed("-n", workers, "--reruns=2")
    assert result.ret == QualificationExit.OK
    check = checks_by_id(document)["test_flaky.py::test_status_settles"]
    assert check["outcome"] == "passed"
    assert check["reruns"] == 1
    assert check["classification"] == "none"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_nothing_is_rerun_after_the_stop(
    pytester: pytest.Pytester, distributed: Any, workers: str
) -> None:
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(
        test_defect="""
import pytest
from pytest_routerd_qual import SubstrateDefect

@pytest.mark.qualification_check("readiness")
def test_status(log_start):
    raise SubstrateDefect("qga", "no answer")
""",
        conftest="""
import os, pytest

@pytest.fixture
def log_start(request):
    with open(os.environ["STARTS_LOG"], "a") as handle:
        handle.write(request.node.nodeid + " attempt\\n")
""",
    )
    result, document = distributed("-n", workers, "--reruns=3")
    assert result.ret == QualificationExit.INFRA_FAILURE
    assert started(pytester) == ["test_defect.py::test_status"]
    check = checks_by_id(document)["test_defect.py::test_status"]
    assert check["classification"] == "infra_failure"


@pytest.mark.parametrize(
    ("marker", "code", "classification"),
    [
        ('qualification_check("readiness")', 1, "product_failure"),
        ("substrate", 11, "infra_failure"),
    ],
)
def test_timeout_is_a_failure_within_the_test_scope(
    pytester: pytest.Pytester,
    distributed: Any,
    marker: str,
    code: int,
    classification: str,
) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(
        test_hang=f"""
import time
import pytest

@pytest.mark.{marker}
@pytest.mark.timeout(1, method="signal")
def test_hangs():
    time.sleep(30)
"""
    )
    result, document = distributed()
    assert result.ret == code
    check = checks_by_id(document)["test_hang.py::test_hangs"]
    assert check["classification"] == classification
    assert "Timeout" in check["message"]
