"""The certification preflight gates a qualification session (pytester sessions)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.testing import SampleCertification, write_sample_certification


def refused(result: pytest.RunResult, *reasons: str) -> None:
    """Assert the session was refused with every one of ``reasons`` printed."""
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    result.stdout.fnmatch_lines(["*routerd-qual: preflight refused*"])
    for reason in reasons:
        result.stdout.fnmatch_lines([f"  - {reason}"])
    result.stdout.no_fnmatch_line("*passed*")
    assert "test_suite.py" not in result.stdout.str()


def test_matching_manifest_lets_the_session_run(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(*sample.pytest_args())
    assert result.ret == QualificationExit.OK
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"routerd-qual: certification {sample.manifest['manifestId']} "
            "(sha256 *) valid until *Z, *m * left: run run-lab-sim-* may start"
        ]
    )


def test_suite_without_manifest_is_refused(
    suite: pytest.Pytester, sample: SampleCertification, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROUTERD_CERTIFICATION_MANIFEST", raising=False)
    result = suite.runpytest(*sample.pytest_args(manifest=False))
    refused(result, "[[]manifest-missing] no certification manifest was given*")


def test_refusal_lists_every_reason_not_only_the_first(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(
        *sample.pytest_args(),
        "--qualification-environment=prod",
        "--qualification-topology=four-leaf",
        "--qualification-providers=pve,oci",
        "--qualification-release=9.9.9",
    )
    refused(
        result,
        "[[]mismatch] the manifest's environment is 'lab-sim' but the run requests "
        "'prod'*",
        "[[]mismatch] the manifest's run.environment is 'lab-sim'*",
        "[[]mismatch] the manifest's topology is 'two-leaf' but the run requests "
        "'four-leaf'*",
        "[[]mismatch] the manifest's providers is 'aws,pve' but the run requests "
        "'oci,pve'*",
        "[[]check-missing] no passing certification check for provider 'oci'",
        "[[]release] --qualification-release '9.9.9' is neither*",
    )
    result.stdout.fnmatch_lines(["8 reason(s) the qualification must not start:"])


def test_plain_suite_is_not_gated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*routerd-qual:*")


def test_ini_declaration_alone_gates_the_suite(suite: pytest.Pytester) -> None:
    result = suite.runpytest()
    refused(
        result,
        "[[]manifest-missing]*",
        "[[]request-incomplete] no qualification environment was requested*",
        "[[]request-incomplete] no qualification topology was requested*",
        "[[]request-incomplete] no providers were requested*",
    )


def test_manifest_option_alone_makes_a_run_a_qualification(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    pytester.makepyfile(test_suite="def test_unscoped():\n    pass\n")
    result = pytester.runpytest(
        *sample.pytest_args(), "--qualification-environment=other"
    )
    refused(result, "[[]mismatch]*'other'*")


def test_environment_variable_supplies_the_manifest_path(
    suite: pytest.Pytester, sample: SampleCertification, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTERD_CERTIFICATION_MANIFEST", str(sample.manifest_path))
    result = suite.runpytest(*sample.pytest_args(manifest=False))
    assert result.ret == QualificationExit.OK


def test_option_wins_over_environment_variable(
    suite: pytest.Pytester, sample: SampleCertification, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTERD_CERTIFICATION_MANIFEST", str(sample.manifest_path))
    result = suite.runpytest(
        *sample.pytest_args(manifest=False), "--certification-manifest=nowhere.json"
    )
    refused(result, "[[]manifest-unreadable] */nowhere.json does not exist")


def test_ini_keys_supply_the_request_relative_to_the_ini_file(
    pytester: pytest.Pytester, sample: SampleCertification
) -> None:
    relative = os.path.relpath(sample.manifest_path, pytester.path)
    pytester.makeini(
        f"""
        [pytest]
        routerd_qualification = true
        certification_manifest = {relative}
        qualification_environment = lab-sim
        qualification_topology = two-leaf
        qualification_providers = aws, pve
        qualification_scripts_root = {sample.scripts_root}
        """
    )
    pytester.makepyfile(
        test_suite="import pytest\n\n@pytest.mark.substrate\ndef test_a():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == QualificationExit.OK


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xef\xbb\xbf{}", "the manifest starts with a UTF-8 byte-order mark"),
        (b'{"a": "\xff"}', "the manifest is not UTF-8 (invalid byte at offset 7)"),
        (b'{"a": 1, "a": 2}', "the manifest repeats the key 'a' in one object"),
        (b'{"a": NaN}', "the manifest contains NaN, which JSON does not allow"),
        (b'{"a": -Infinity}', "the manifest contains -Infinity*"),
        (
            b"[1, 2]",
            "the manifest must be a JSON object at the top level, not an array",
        ),
        (b"{", "the manifest is not JSON: *"),
        (b"", "the manifest is not JSON: *"),
        (b'{"a": "\\ud800"}', "the manifest contains an unpaired UTF-16 surrogate*"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "the manifest is nested deeper than 64*"),
        (b"[" * 100_000 + b"]" * 100_000, "the manifest is nested too deeply"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "the manifest holds a value Python refuses*"),
    ],
)
def test_manifest_that_is_not_strict_json_is_refused(
    suite: pytest.Pytester,
    sample: SampleCertification,
    content: bytes,
    reason: str,
) -> None:
    sample.manifest_path.write_bytes(content)
    result = suite.runpytest(*sample.pytest_args())
    refused(result, f"[[]manifest-unreadable] {reason}")


def test_directory_named_as_manifest_is_refused(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(
        *sample.pytest_args(), f"--certification-manifest={sample.directory}"
    )
    refused(result, "[[]manifest-unreadable] */lab is a directory, not a file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_named_as_manifest_is_refused_without_blocking(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    fifo = sample.directory / "manifest.fifo"
    os.mkfifo(fifo)
    result = suite.runpytest_subprocess(
        *sample.pytest_args(), f"--certification-manifest={fifo}", timeout=60
    )
    refused(result, "[[]manifest-unreadable] */manifest.fifo is a FIFO, not a file")


def test_manifest_over_8_mib_is_refused_unread(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    with sample.manifest_path.open("ab") as handle:
        handle.truncate(8 * 1024 * 1024 + 1)
    result = suite.runpytest(*sample.pytest_args())
    refused(
        result,
        "[[]manifest-unreadable] *certification.json has 8388609 bytes, more than "
        "the 8388608 allowed",
    )


def mutated(tmp_path: Path, change: Any) -> SampleCertification:
    return write_sample_certification(tmp_path / "lab", mutate=change)


def test_schema_errors_are_reported_each_with_its_json_path(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["issuedAt"] = "2026-12-03T10:00:00"
        manifest["run"]["routerdArtifact"]["sha256"] = "ABC"
        manifest["surplus"] = True

    sample = mutated(tmp_path, change)
    result = suite.runpytest(*sample.pytest_args())
    refused(
        result,
        "[[]schema] the manifest breaks the schema at $: *'surplus'*",
        "[[]schema] the manifest breaks the schema at $.issuedAt: *date-time*",
        "[[]schema] the manifest breaks the schema at $.run.routerdArtifact.sha256: *",
    )


@pytest.mark.parametrize("status", ["fail", "blocked", "expired"])
def test_manifest_whose_status_is_not_pass_is_refused(
    suite: pytest.Pytester, tmp_path: Path, status: str
) -> None:
    sample = mutated(tmp_path, lambda m: m.update(status=status))
    result = suite.runpytest(*sample.pytest_args())
    refused(result, f"[[]status] certification status is '{status}', not 'pass'*")


def test_expired_manifest_stops_the_session(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    later = datetime.now(timezone.utc) + timedelta(hours=1, minutes=1)
    with time_machine.travel(later, tick=False):
        result = suite.runpytest(*sample.pytest_args())
    refused(result, "[[]expired] the certification expired at *Z (1m 0?s ago)*")


def test_manifest_expiring_this_second_is_already_expired(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    expiry = datetime.fromisoformat(sample.manifest["expiresAt"].replace("Z", "+00:00"))
    with time_machine.travel(expiry, tick=False):
        result = suite.runpytest(*sample.pytest_args())
    refused(result, "[[]expired]*")


def test_expiry_is_compared_in_utc_whatever_the_offset(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    def change(manifest: dict[str, Any]) -> None:
        # Same instant as "now + 30 minutes", written in +09:00.
        soon = datetime.now(timezone.utc) + timedelta(minutes=30)
        manifest["expiresAt"] = soon.astimezone(
            timezone(timedelta(hours=9))
        ).isoformat()

    sample = mutated(tmp_path, change)
    # A TTL that ends before the expiry: a run may not outlive its certification.
    args = [*sample.pytest_args(), "--qualification-ttl=20m"]
    assert suite.runpytest(*args).ret == QualificationExit.OK
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=31)):
        result = suite.runpytest(*args)
    refused(result, "[[]expired]*")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda m: m.update(
                certifiers=[c for c in m["certifiers"] if "pve" not in c["name"]]
            ),
            "[[]certifier-missing] no certify-pve-substrate.sh entry among the "
            "certifiers, but the run requests pve",
        ),
        (
            lambda m: m.update(
                certifiers=[c for c in m["certifiers"] if "cloud" not in c["name"]]
            ),
            "[[]certifier-missing] no certify-cloud-substrate.sh entry*cloud provider",
        ),
        (
            lambda m: m["checks"][1].update(result="skipped"),
            "[[]check-missing] no passing certification check for provider 'aws'",
        ),
        (
            lambda m: m["run"]["routerdArtifact"].update(sha256="a" * 64),
            "[[]artifact] the routerd artifact * has SHA-256 *, not the certified "
            "aaaaaaaaaaaa*",
        ),
        (
            lambda m: m["run"]["routerdArtifact"].update(path="artifacts/missing.tar"),
            "[[]artifact] the routerd artifact cannot be checked: */missing.tar does "
            "not exist*",
        ),
        (
            lambda m: m["run"].update(topology="mesh"),
            "[[]mismatch] the manifest's run.topology is 'mesh'*",
        ),
        (
            lambda m: m["run"]["providers"].append(
                {**m["run"]["providers"][1], "region": "us-east-1"}
            ),
            "[[]incoherent] run.providers names aws more than once*",
        ),
        (
            lambda m: m["run"].update(providers=m["run"]["providers"][:1]),
            "[[]mismatch] the manifest's run.providers is 'pve' but the run requests "
            "'aws,pve'*",
        ),
        (
            lambda m: m["run"]["qaImplementation"]["scriptBlobs"].update(
                {"scripts/gone.sh": "b" * 64}
            ),
            "[[]script-revision] run.qaImplementation.scriptBlobs pins "
            "scripts/gone.sh, but */gone.sh does not exist*",
        ),
        (
            lambda m: m["run"]["qaImplementation"]["scriptBlobs"].update(
                {"../outside.sh": "b" * 64}
            ),
            "[[]script-revision] *'../outside.sh', which is outside the scripts root",
        ),
    ],
)
def test_manifest_that_does_not_certify_the_request_is_refused(
    suite: pytest.Pytester, tmp_path: Path, change: Any, reason: str
) -> None:
    sample = mutated(tmp_path, change)
    result = suite.runpytest(*sample.pytest_args())
    refused(result, reason)


def test_drifted_script_is_a_mismatch(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    (sample.scripts_root / "scripts" / "matrix.sh").write_text("#!/bin/sh\nexit 0\n")
    result = suite.runpytest(*sample.pytest_args())
    refused(
        result,
        "[[]script-revision] scripts/matrix.sh has drifted from the certified "
        "revision*",
    )


@pytest.mark.parametrize(
    ("labs_commit", "go"),
    [
        ("9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3", True),
        ("9a8b7c6", True),
        ("1111111111111111111111111111111111111111", False),
    ],
)
def test_labs_commit_must_equal_the_certified_one(
    suite: pytest.Pytester, sample: SampleCertification, labs_commit: str, go: bool
) -> None:
    result = suite.runpytest(
        *sample.pytest_args(), f"--qualification-labs-commit={labs_commit}"
    )
    if go:
        assert result.ret == QualificationExit.OK
    else:
        refused(
            result,
            "[[]script-revision] the manifest's labsCommit is 9a8b7c6d*",
            "[[]script-revision] the manifest's run.qaImplementation.commit is *",
        )


@pytest.mark.parametrize(
    "release", ["1.4.0", "4f1c2e9a", "4f1c2e9a7b3d5f60812a9c4e6b7d8f0a1c2e3f4a"]
)
def test_release_may_name_version_full_commit_or_its_first_8_characters(
    suite: pytest.Pytester, sample: SampleCertification, release: str
) -> None:
    result = suite.runpytest(
        *sample.pytest_args(), f"--qualification-release={release}"
    )
    assert result.ret == QualificationExit.OK


@pytest.mark.parametrize(
    ("providers", "reason"),
    [
        ("pve,aws,gcp", "[[]request-invalid] unknown provider 'gcp' requested*"),
        ("pve,aws,pve", "[[]request-invalid] provider 'pve' requested more than once"),
    ],
)
def test_request_must_name_known_providers_once_each(
    suite: pytest.Pytester, sample: SampleCertification, providers: str, reason: str
) -> None:
    result = suite.runpytest(
        *sample.pytest_args(), f"--qualification-providers={providers}"
    )
    refused(result, reason)


def test_provider_order_does_not_matter(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(*sample.pytest_args(), "--qualification-providers=aws,pve")
    assert result.ret == QualificationExit.OK


def _shift(manifest: dict[str, Any], key: str, delta: timedelta) -> None:
    moment = datetime.fromisoformat(manifest[key].replace("Z", "+00:00")) + delta
    manifest[key] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _shift_both(manifest: dict[str, Any], delta: timedelta) -> None:
    _shift(manifest, "issuedAt", delta)
    _shift(manifest, "expiresAt", delta)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda m: _shift(m, "issuedAt", timedelta(hours=2)),
            "[[]incoherent] expiresAt * is not after issuedAt *",
        ),
        (
            lambda m: _shift_both(m, timedelta(minutes=6)),
            "[[]incoherent] issuedAt * lies *m *s in the future*",
        ),
        (
            lambda m: _shift(m, "expiresAt", timedelta(hours=168)),
            "[[]incoherent] the validity window from issuedAt to expiresAt is 7d 01h*",
        ),
        (
            lambda m: m["checks"][0].update(result="fail"),
            "[[]incoherent] status 'pass' is contradicted by check "
            "pve-bootstrap (fail)",
        ),
        (
            lambda m: m["certifiers"][1].update(result="blocked"),
            "[[]incoherent] status 'pass' is contradicted by certifier "
            "certify-cloud-substrate.sh (blocked)",
        ),
    ],
)
def test_forged_or_hand_edited_manifest_is_refused(
    suite: pytest.Pytester, tmp_path: Path, change: Any, reason: str
) -> None:
    sample = mutated(tmp_path, change)
    result = suite.runpytest(*sample.pytest_args())
    refused(result, reason)


def test_issued_at_slightly_ahead_is_tolerated(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    sample = mutated(tmp_path, lambda m: _shift(m, "issuedAt", timedelta(minutes=4)))
    assert suite.runpytest(*sample.pytest_args()).ret == QualificationExit.OK


def test_suite_may_validate_against_its_own_schema_file(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    strict = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["routerdSpecificField"],
    }
    schema = suite.path / "schema.json"
    schema.write_text(json.dumps(strict))
    result = suite.runpytest(*sample.pytest_args(), f"--certification-schema={schema}")
    refused(
        result,
        "[[]schema] the manifest breaks the schema at $: 'routerdSpecificField' is a "
        "required property",
    )


def test_unusable_schema_file_refuses_rather_than_skipping_validation(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    schema = suite.path / "schema.json"
    schema.write_text('{"type": 12}')
    result = suite.runpytest(*sample.pytest_args(), f"--certification-schema={schema}")
    refused(result, "[[]schema-unusable] schema file */schema.json is not a valid*")


def test_refusal_writes_the_result_with_the_reasons(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    target = suite.path / "out" / "result.json"
    result = suite.runpytest(
        *sample.pytest_args(),
        "--qualification-environment=prod",
        f"--qualification-result={target}",
    )
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    document = json.loads(target.read_text())
    assert document["classification"] == "preflight_failure"
    assert document["status"] == "fail"
    assert document["driverExit"] == 10
    assert document["certificationManifestId"] == sample.manifest["manifestId"]
    [preflight] = document["checks"]
    assert [r["rule"] for r in preflight["reasons"]] == ["mismatch", "mismatch"]
    assert len(preflight["manifestSha256"]) == 64


@pytest.mark.parametrize(
    "override",
    [
        "routerd_qualification=false",
        "routerd_qualification=0",
        "qualification_require_lifecycle=false",
        "substrate_exceptions=",
    ],
)
def test_command_line_cannot_switch_the_gate_off(
    suite: pytest.Pytester, override: str
) -> None:
    result = suite.runpytest("-o", override)
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: routerd-qual: -o {override} is refused: the qualification policy*"]
    )
    assert "passed" not in result.stdout.str()


def test_command_line_may_switch_the_gate_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("-o", "routerd_qualification=true")
    refused(result, "[[]manifest-missing]*")


def test_blocking_the_session_plugin_is_refused(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(*sample.pytest_args(), "-p", "no:routerd_qual_session")
    assert result.ret == QualificationExit.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: routerd-qual: -p no:routerd_qual_session is refused*"]
    )


def test_result_goes_to_the_rootdir_when_no_path_is_given(
    suite: pytest.Pytester, sample: SampleCertification
) -> None:
    result = suite.runpytest(*sample.pytest_args(), "--qualification-topology=x")
    assert result.ret == QualificationExit.PREFLIGHT_FAILURE
    document = json.loads((suite.path / ".routerd-qual" / "result.json").read_text())
    assert document["classification"] == "preflight_failure"
