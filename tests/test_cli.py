"""``routerd-qual``: the preflight and the schema check from a shell.

Most cases call :func:`pytest_routerd_qual.cli.main` in-process; a few run the real
command, through the console script and through ``python -m``, to prove the entry
points exist and exit with the same codes.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine

from pytest_routerd_qual import QualificationExit
from pytest_routerd_qual.cli import USAGE_ERROR, main
from pytest_routerd_qual.testing import (
    ARTIFACT_PATH,
    ROUTERD_COMMIT,
    SampleCertification,
    write_sample_certification,
)

GO = QualificationExit.OK
NO_GO = QualificationExit.PREFLIGHT_FAILURE
USAGE = USAGE_ERROR
CONSOLE_SCRIPT = Path(sys.executable).with_name("routerd-qual")
FIX_HINT = (
    "Fix the request, or obtain a new passing certification manifest: a "
    "refused manifest is never edited or repaired in place."
)


@dataclass(frozen=True)
class Outcome:
    """What one run of the command printed, and how it exited."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def reason_lines(self) -> list[str]:
        return [line for line in self.lines if line.startswith("  - ")]


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """Run the command in-process; argparse's exit becomes the exit code."""
    try:
        code: Any = main(list(args))
    except SystemExit as exc:
        code = exc.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def launch(*command: str) -> Outcome:
    """Run the command as a real process."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def matches(line: str, pattern: str) -> bool:
    """Whether ``line`` is ``pattern``, where only ``*`` is a wildcard."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, line) is not None


def assert_lines(actual: Sequence[str], patterns: Sequence[str]) -> None:
    assert len(actual) == len(patterns), actual
    for line, pattern in zip(actual, patterns, strict=True):
        assert matches(line, pattern), (line, pattern)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def go_line(sample: SampleCertification, left: str) -> str:
    manifest = sample.manifest
    return (
        f"go: certification {manifest['manifestId']} "
        f"(sha256 {sha256_of(sample.manifest_path)[:12]}) valid until "
        f"{manifest['expiresAt']}, {left} left: run {manifest['run']['runId']} "
        "may start"
    )


def head_lines(sample: SampleCertification, count: int, *, known: bool) -> list[str]:
    """The first two lines of a refusal; the ID is known once the schema passed."""
    manifest_id = sample.manifest["manifestId"] if known else "unknown"
    return [
        f"no-go: manifest: {sample.manifest_path} (id {manifest_id}, "
        f"sha256 {sha256_of(sample.manifest_path)[:12]})",
        f"{count} reason(s) the qualification must not start:",
    ]


def test_exit_codes_are_the_ones_routerd_tooling_branches_on() -> None:
    assert (GO, NO_GO, USAGE) == (0, 10, 2)


# --- preflight: go ----------------------------------------------------------------


def test_matching_manifest_prints_one_go_line_and_exits_0(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    issued = stamp_of(sample.manifest["issuedAt"])
    with time_machine.travel(issued + timedelta(minutes=15), tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args())
    assert outcome == Outcome(GO, go_line(sample, "45m 00s") + "\n", "")


@pytest.mark.parametrize("release", ["1.4.0", ROUTERD_COMMIT[:8], ROUTERD_COMMIT])
def test_release_may_name_the_version_the_commit_or_its_first_8_characters(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification, release: str
) -> None:
    outcome = invoke(
        capsys, "preflight", *sample.preflight_args(), "--release", release
    )
    assert outcome.code == GO
    assert_lines(outcome.lines, [go_line(sample, "*")])


def test_go_as_json_names_the_manifest_and_its_digest(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    moment = stamp_of(sample.manifest["issuedAt"]) + timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args(), "--json")
    assert outcome.code == GO
    assert json.loads(outcome.out) == {
        "go": True,
        "manifestId": sample.manifest["manifestId"],
        "runId": sample.manifest["run"]["runId"],
        "manifestSha256": sha256_of(sample.manifest_path),
        "checkedAt": moment.isoformat(),
        "reasons": [],
    }


# --- preflight: refusals ----------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A way to make the preflight refuse, and the reason lines it must print."""

    change: Callable[[dict[str, Any]], None] | None = None
    args: tuple[str, ...] = ()
    after: Callable[[SampleCertification], None] | None = None
    reasons: tuple[str, ...] = ()
    schema_valid: bool = True


def _drop_certifier(word: str) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest["certifiers"] = [
            c for c in manifest["certifiers"] if word not in c["name"]
        ]

    return change


def _rewrite_script(sample: SampleCertification) -> None:
    (sample.scripts_root / "scripts" / "matrix.sh").write_text("#!/bin/sh\nexit 0\n")


def _blob(path: str) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["run"]["qaImplementation"]["scriptBlobs"].update(
        {path: "b" * 64}
    )


def _extend_validity(manifest: dict[str, Any]) -> None:
    expiry = stamp_of(manifest["expiresAt"]) + timedelta(hours=168)
    manifest["expiresAt"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


def _surplus(manifest: dict[str, Any]) -> None:
    manifest["surplus"] = True
    manifest["run"]["routerdArtifact"]["sha256"] = "ABC"


_USE = ": use a certification of the requested"
REFUSALS = {
    "status-fail": Refusal(
        change=lambda m: m.update(status="fail"),
        reasons=(
            "[status] certification status is 'fail', not 'pass': qualification "
            "needs a passing certification; recertify the environment",
        ),
    ),
    "environment-mismatch": Refusal(
        args=("--environment", "prod"),
        reasons=(
            "[mismatch] the manifest's environment is 'lab-sim' but the run "
            f"requests 'prod'{_USE} environment",
            "[mismatch] the manifest's run.environment is 'lab-sim' but the run "
            f"requests 'prod'{_USE} environment",
        ),
    ),
    "topology-mismatch": Refusal(
        args=("--topology", "mesh"),
        reasons=(
            "[mismatch] the manifest's topology is 'two-leaf' but the run requests "
            f"'mesh'{_USE} topology",
            "[mismatch] the manifest's run.topology is 'two-leaf' but the run "
            f"requests 'mesh'{_USE} topology",
        ),
    ),
    "providers-mismatch": Refusal(
        args=("--providers", "pve,oci"),
        reasons=(
            "[mismatch] the manifest's providers is 'aws,pve' but the run requests "
            f"'oci,pve'{_USE} providers",
            "[mismatch] the manifest's run.providers is 'aws,pve' but the run "
            f"requests 'oci,pve'{_USE} providers",
            "[check-missing] no passing certification check for provider 'oci'",
        ),
    ),
    "run-topology-mismatch": Refusal(
        change=lambda m: m["run"].update(topology="mesh"),
        reasons=(
            "[mismatch] the manifest's run.topology is 'mesh' but the run requests "
            f"'two-leaf'{_USE} topology",
        ),
    ),
    "unknown-provider": Refusal(
        args=("--providers", "pve,aws,gcp"),
        reasons=(
            "[request-invalid] unknown provider 'gcp' requested; known: pve, aws, "
            "azure, oci",
            "[mismatch] the manifest's providers is 'aws,pve' but the run requests "
            f"'aws,gcp,pve'{_USE} providers",
            "[mismatch] the manifest's run.providers is 'aws,pve' but the run "
            f"requests 'aws,gcp,pve'{_USE} providers",
        ),
    ),
    "repeated-provider": Refusal(
        args=("--providers", "pve,aws,pve"),
        reasons=("[request-invalid] provider 'pve' requested more than once",),
    ),
    "empty-environment": Refusal(
        args=("--environment", " "),
        reasons=("[request-incomplete] no qualification environment was requested*",),
    ),
    "pve-certifier-missing": Refusal(
        change=_drop_certifier("pve"),
        reasons=(
            "[certifier-missing] no certify-pve-substrate.sh entry among the "
            "certifiers, but the run requests pve",
        ),
    ),
    "cloud-certifier-missing": Refusal(
        change=_drop_certifier("cloud"),
        reasons=(
            "[certifier-missing] no certify-cloud-substrate.sh entry among the "
            "certifiers, but the run requests a cloud provider",
        ),
    ),
    "check-missing": Refusal(
        change=lambda m: m["checks"][1].update(result="skipped"),
        reasons=("[check-missing] no passing certification check for provider 'aws'",),
    ),
    "contradicted-pass": Refusal(
        change=lambda m: m["checks"][0].update(result="fail"),
        reasons=(
            "[incoherent] status 'pass' is contradicted by check pve-bootstrap (fail)",
            "[check-missing] no passing certification check for provider 'pve'",
        ),
    ),
    "validity-too-long": Refusal(
        change=_extend_validity,
        reasons=(
            "[incoherent] the validity window from issuedAt to expiresAt is 7d 01h, "
            "more than the 168h a certification may claim",
        ),
    ),
    "artifact-digest": Refusal(
        change=lambda m: m["run"]["routerdArtifact"].update(sha256="a" * 64),
        reasons=(
            f"[artifact] the routerd artifact */lab/{ARTIFACT_PATH} has SHA-256 *…, "
            "not the certified aaaaaaaaaaaa…: it is not the artifact that was "
            "certified",
        ),
    ),
    "artifact-missing": Refusal(
        change=lambda m: m["run"]["routerdArtifact"].update(path="artifacts/gone.tar"),
        reasons=(
            "[artifact] the routerd artifact cannot be checked: */lab/artifacts/"
            "gone.tar does not exist; build or fetch the certified artifact first",
        ),
    ),
    "script-drift": Refusal(
        after=_rewrite_script,
        reasons=(
            "[script-revision] scripts/matrix.sh has drifted from the certified "
            "revision (SHA-256 *…, certified *…): run the scripts that were "
            "certified",
        ),
    ),
    "script-missing": Refusal(
        change=_blob("scripts/gone.sh"),
        reasons=(
            "[script-revision] run.qaImplementation.scriptBlobs pins "
            "scripts/gone.sh, but */lab/scripts/gone.sh does not exist: check "
            "--scripts-root",
        ),
    ),
    "script-outside-root": Refusal(
        change=_blob("../outside.sh"),
        reasons=(
            "[script-revision] run.qaImplementation.scriptBlobs names "
            "'../outside.sh', which is outside the scripts root",
        ),
    ),
    "release-mismatch": Refusal(
        args=("--release", "9.9.9"),
        reasons=(
            "[release] * '9.9.9' is neither the certified artifact's version "
            f"'1.4.0' nor its commit {ROUTERD_COMMIT[:8]}",
        ),
    ),
    "labs-commit-mismatch": Refusal(
        args=("--labs-commit", "1" * 40),
        reasons=(
            "[script-revision] the manifest's labsCommit is 9a8b7c6d5e4f30211203f4"
            f"e5d6c7b8a9f0e1d2c3, but the run requests labs commit {'1' * 40}",
            "[script-revision] the manifest's run.qaImplementation.commit is "
            "9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3, but the run requests labs "
            f"commit {'1' * 40}",
        ),
    ),
    "labs-commit-not-a-commit": Refusal(
        args=("--labs-commit", "main"),
        reasons=("[request-invalid] * 'main' is not a commit (7 to 40 lowercase hex*",),
    ),
    "schema": Refusal(
        change=_surplus,
        reasons=(
            "[schema] the manifest breaks the schema at $.run.routerdArtifact.sha256: "
            "'ABC' does not match *",
            "[schema] the manifest breaks the schema at $: Additional properties are "
            "not allowed ('surplus' was unexpected)",
        ),
        schema_valid=False,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusal_prints_one_line_per_reason_and_exits_10(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: Refusal
) -> None:
    sample = write_sample_certification(tmp_path / "lab", mutate=case.change)
    if case.after is not None:
        case.after(sample)
    args = ["preflight", *sample.preflight_args(), *case.args]
    outcome = invoke(capsys, *args)
    assert (outcome.code, outcome.err) == (NO_GO, "")
    assert outcome.lines == [
        *head_lines(sample, len(case.reasons), known=case.schema_valid),
        *outcome.reason_lines,
        FIX_HINT,
    ]
    assert_lines(outcome.reason_lines, [f"  - {reason}" for reason in case.reasons])
    as_json = invoke(capsys, *args, "--json")
    assert as_json.code == NO_GO
    assert [
        f"  - [{reason['rule']}] {reason['message']}"
        for reason in json.loads(as_json.out)["reasons"]
    ] == outcome.reason_lines


def test_refusal_as_json_lists_every_reason_with_its_rule(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    moment = stamp_of(sample.manifest["issuedAt"]) + timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        outcome = invoke(
            capsys,
            "preflight",
            *sample.preflight_args(),
            "--topology",
            "mesh",
            "--json",
        )
    assert outcome.code == NO_GO
    assert json.loads(outcome.out) == {
        "go": False,
        "manifestId": sample.manifest["manifestId"],
        "runId": sample.manifest["run"]["runId"],
        "manifestSha256": sha256_of(sample.manifest_path),
        "checkedAt": moment.isoformat(),
        "reasons": [
            {
                "rule": "mismatch",
                "message": f"the manifest's {where} is 'two-leaf' but the run "
                f"requests 'mesh'{_USE} topology",
            }
            for where in ("topology", "run.topology")
        ],
    }


def test_unreadable_manifest_as_json_has_no_id_and_no_digest(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    sample.manifest_path.write_bytes(b"{")
    outcome = invoke(capsys, "preflight", *sample.preflight_args(), "--json")
    assert outcome.code == NO_GO
    document = json.loads(outcome.out)
    assert (document["go"], document["manifestId"], document["manifestSha256"]) == (
        False,
        "unknown",
        None,
    )
    assert document["reasons"] == [
        {
            "rule": "manifest-unreadable",
            "message": "the manifest is not JSON: Expecting property name enclosed "
            "in double quotes at line 1 column 2",
        }
    ]


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("absent.json", None, "{path} does not exist"),
        ("a-directory", Path.mkdir, "{path} is a directory, not a file"),
        (
            "empty.json",
            Path.touch,
            "the manifest is not JSON: Expecting value at line 1 column 1",
        ),
    ],
    ids=["missing", "directory", "empty"],
)
def test_manifest_that_cannot_be_read_is_refused_with_exit_10(
    capsys: pytest.CaptureFixture[str],
    sample: SampleCertification,
    name: str,
    write: Callable[[Path], None] | None,
    message: str,
) -> None:
    path = sample.directory / name
    if write is not None:
        write(path)
    outcome = invoke(
        capsys, "preflight", *sample.preflight_args(), "--certification", str(path)
    )
    assert outcome == Outcome(
        NO_GO,
        "\n".join(
            [
                f"no-go: manifest: {path} (id unknown)",
                "1 reason(s) the qualification must not start:",
                f"  - [manifest-unreadable] {message.format(path=path)}",
                FIX_HINT,
            ]
        )
        + "\n",
        "",
    )


def test_unusable_schema_file_is_a_refusal_not_a_pass(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    schema = sample.directory / "schema.json"
    schema.write_text('{"type": 12}')
    outcome = invoke(
        capsys, "preflight", *sample.preflight_args(), "--schema", str(schema)
    )
    assert outcome.code == NO_GO
    assert_lines(
        outcome.reason_lines,
        [f"  - [schema-unusable] schema file {schema} is not a valid JSON Schema: *"],
    )


# --- preflight: time --------------------------------------------------------------


def test_expired_manifest_is_refused_with_how_long_ago(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    expiry = sample.manifest["expiresAt"]
    with time_machine.travel(stamp_of(expiry) + timedelta(seconds=61), tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args())
    assert outcome.code == NO_GO
    assert outcome.reason_lines == [
        f"  - [expired] the certification expired at {expiry} (1m 01s ago): "
        "recertify and use the new manifest"
    ]


def test_manifest_expiring_this_second_is_already_expired(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    expiry = sample.manifest["expiresAt"]
    with time_machine.travel(stamp_of(expiry), tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args())
    assert outcome.code == NO_GO
    assert outcome.reason_lines == [
        f"  - [expired] the certification expired at {expiry} (0s ago): recertify "
        "and use the new manifest"
    ]


def test_manifest_one_second_from_expiry_is_unexpired_but_outlived_by_the_ttl(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    moment = stamp_of(sample.manifest["expiresAt"]) - timedelta(seconds=1)
    with time_machine.travel(moment, tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args())
    assert outcome.code == NO_GO
    assert [line.split("]")[0] for line in outcome.reason_lines] == [
        "  - [lifecycle-expiry"
    ]


def test_command_refuses_a_manifest_the_ledger_has_spent(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from pytest_routerd_qual.ledger import Ledger

    ledger = tmp_path / "ledger.jsonl"
    Ledger(ledger).record_spent(
        sample.manifest["manifestId"],
        hashlib.sha256(sample.manifest_path.read_bytes()).hexdigest(),
        sample.manifest["run"]["runId"],
        "infra_failure",
        datetime.now(timezone.utc),
    )
    outcome = invoke(
        capsys, "preflight", *sample.preflight_args(), "--ledger", str(ledger)
    )
    assert outcome.code == NO_GO
    assert [line.split("]")[0] for line in outcome.reason_lines] == ["  - [spent"]


def test_manifest_issued_in_the_future_beyond_the_skew_is_refused(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    issued = sample.manifest["issuedAt"]
    with time_machine.travel(stamp_of(issued) - timedelta(minutes=6), tick=False):
        outcome = invoke(capsys, "preflight", *sample.preflight_args())
    assert outcome.code == NO_GO
    assert outcome.reason_lines == [
        f"  - [incoherent] issuedAt {issued} lies 6m 00s in the future: check the "
        "clocks, or the manifest was forged"
    ]


# --- validate ---------------------------------------------------------------------


def test_validate_accepts_a_valid_manifest_and_prints_its_digest(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    outcome = invoke(capsys, "validate", str(sample.manifest_path))
    assert outcome == Outcome(
        GO,
        f"valid: {sample.manifest_path} (sha256 {sha256_of(sample.manifest_path)})\n",
        "",
    )


def test_validate_ignores_status_and_expiry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = write_sample_certification(
        tmp_path / "lab", mutate=lambda m: m.update(status="expired")
    )
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=30)):
        outcome = invoke(capsys, "validate", str(sample.manifest_path))
    assert outcome.code == GO


def test_validate_reports_every_schema_error_with_its_json_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def change(manifest: dict[str, Any]) -> None:
        _surplus(manifest)
        manifest["issuedAt"] = "2026-12-03T10:00:00"

    sample = write_sample_certification(tmp_path / "lab", mutate=change)
    outcome = invoke(capsys, "validate", str(sample.manifest_path))
    assert (outcome.code, outcome.err) == (NO_GO, "")
    assert_lines(
        sorted(outcome.lines),
        [
            "invalid: $.issuedAt: '2026-12-03T10:00:00' is not a 'date-time'",
            "invalid: $.run.routerdArtifact.sha256: 'ABC' does not match *",
            "invalid: $: Additional properties are not allowed ('surplus' was "
            "unexpected)",
        ],
    )


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("absent.json", None, "invalid: {path} does not exist"),
        ("a-directory", Path.mkdir, "invalid: {path} is a directory, not a file"),
        (
            "array.json",
            lambda path: path.write_text("[]"),
            "invalid: the manifest must be a JSON object at the top level, not an "
            "array",
        ),
    ],
    ids=["missing", "directory", "array"],
)
def test_validate_refuses_what_is_not_a_manifest_file_with_exit_10(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    write: Callable[[Path], None] | None,
    message: str,
) -> None:
    path = tmp_path / name
    if write is not None:
        write(path)
    outcome = invoke(capsys, "validate", str(path))
    assert outcome == Outcome(NO_GO, message.format(path=path) + "\n", "")


def test_validate_uses_the_schema_file_it_is_given(
    capsys: pytest.CaptureFixture[str], sample: SampleCertification
) -> None:
    schema = sample.directory / "schema.json"
    schema.write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["routerdSpecificField"],
            }
        )
    )
    args = ("validate", str(sample.manifest_path), "--schema", str(schema))
    outcome = invoke(capsys, *args)
    assert outcome == Outcome(
        NO_GO, "invalid: $: 'routerdSpecificField' is a required property\n", ""
    )


# --- usage errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "routerd-qual: error: the following arguments are required: COMMAND"),
        (("bogus",), "routerd-qual: error: argument COMMAND: invalid choice: 'bogus'*"),
        (
            ("preflight", "--certification", "m.json", "--environment", "lab-sim"),
            "routerd-qual preflight: error: the following arguments are required: "
            "--topology, --providers",
        ),
        (
            ("validate",),
            "routerd-qual validate: error: the following arguments are required: FILE",
        ),
        (
            ("validate", "m.json", "--strict"),
            "routerd-qual: error: unrecognized arguments: --strict",
        ),
    ],
    ids=[
        "no-subcommand",
        "unknown-subcommand",
        "missing-flags",
        "missing-file",
        "unknown-flag",
    ],
)
def test_usage_error_exits_2_with_usage_and_no_traceback(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], error: str
) -> None:
    outcome = invoke(capsys, *args)
    assert (outcome.code, outcome.out) == (USAGE, "")
    lines = outcome.err.splitlines()
    assert lines[0].startswith("usage: routerd-qual")
    assert matches(lines[-1], error), lines[-1]
    assert "Traceback" not in outcome.err


# --- real processes ---------------------------------------------------------------


def test_console_script_runs_the_preflight_and_exits_0_on_go(
    sample: SampleCertification,
) -> None:
    outcome = launch(str(CONSOLE_SCRIPT), "preflight", *sample.preflight_args())
    assert (outcome.code, outcome.err) == (GO, "")
    assert_lines(outcome.lines, [go_line(sample, "*")])


def test_module_run_prints_json_and_exits_10_on_no_go(
    sample: SampleCertification,
) -> None:
    outcome = launch(
        sys.executable,
        "-m",
        "pytest_routerd_qual.cli",
        "preflight",
        *sample.preflight_args(),
        "--providers",
        "pve",
        "--json",
    )
    assert (outcome.code, outcome.err) == (NO_GO, "")
    document = json.loads(outcome.out)
    assert (document["go"], document["manifestSha256"]) == (
        False,
        sha256_of(sample.manifest_path),
    )
    assert [reason["rule"] for reason in document["reasons"]] == [
        "mismatch",
        "mismatch",
    ]


def test_module_run_validates_and_exits_10_with_json_paths(tmp_path: Path) -> None:
    sample = write_sample_certification(tmp_path / "lab", mutate=_surplus)
    outcome = launch(
        sys.executable,
        "-m",
        "pytest_routerd_qual.cli",
        "validate",
        str(sample.manifest_path),
    )
    assert (outcome.code, outcome.err) == (NO_GO, "")
    assert_lines(
        outcome.lines,
        [
            "invalid: $.run.routerdArtifact.sha256: 'ABC' does not match *",
            "invalid: $: Additional properties are not allowed ('surplus' was "
            "unexpected)",
        ],
    )


@pytest.mark.parametrize(
    "launcher",
    [(str(CONSOLE_SCRIPT),), (sys.executable, "-m", "pytest_routerd_qual.cli")],
    ids=["console-script", "python-m"],
)
def test_real_process_usage_error_exits_2_without_a_traceback(
    launcher: tuple[str, ...],
) -> None:
    outcome = launch(*launcher, "preflight", "--environment", "lab-sim")
    assert (outcome.code, outcome.out) == (USAGE, "")
    assert outcome.err.splitlines()[-1] == (
        "routerd-qual preflight: error: the following arguments are required: "
        "--certification, --topology, --providers"
    )
    assert "Traceback" not in outcome.err
