"""The pure parts of the lifecycle guard: durations, settings, rules, ledger, repairs.

Processes (cleanup commands, the watchdog) are tested in test_lifecycle_processes.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pendulum
import pytest

from pytest_routerd_qual.defects import SubstrateDefect
from pytest_routerd_qual.durations import format_seconds, parse_duration
from pytest_routerd_qual.ledger import Ledger
from pytest_routerd_qual.lifecycle import (
    DurationOption,
    EvidenceFile,
    LifecycleCommand,
    LifecycleError,
    LifecycleSettings,
    Limits,
    lifecycle_failed,
    lifecycle_preflight_rules,
    lifecycle_settings_from_config,
    resolve_command,
)
from pytest_routerd_qual.model import CertificationManifest
from pytest_routerd_qual.preflight import Reason, Request, run_preflight
from pytest_routerd_qual.repair import (
    RUN_ID_ENV,
    activate,
    active_run_id,
    deactivate,
    is_repair_action,
    qualification_active,
    repair_action,
)
from pytest_routerd_qual.testing import SampleCertification, write_sample_certification

SHA_A = "a" * 64
SHA_B = "b" * 64
WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# ------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("75m", 4500), ("2h", 7200), ("1d", 86400)],
)
def test_durations_read_as_the_manifest_writes_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "0s", "075m", "1.5h", "-1s", "10", "1w", "1h30m", " 5m", "5M", "\u0661s"],
)
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: write a positive whole"):
        parse_duration(text)


def test_durations_are_written_back_in_their_largest_exact_unit() -> None:
    assert [format_seconds(s) for s in (1, 90, 4500, 7200, 86400)] == [
        "1s",
        "90s",
        "75m",
        "2h",
        "1d",
    ]


# ------------------------------------------------------------------------- settings


def test_options_give_the_lifecycle_settings(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig(
        "--qualification-ttl=30m",
        "--qualification-heartbeat-stale=90s",
        "--qualification-cleanup-timeout=2m",
        "--qualification-cleanup-command=bin/cleanup",
        "--qualification-inventory-command=sh",
        "--qualification-evidence-dir=evidence",
    )
    settings = lifecycle_settings_from_config(config)
    assert settings.ttl == DurationOption(1800, "30m", "--qualification-ttl")
    assert settings.heartbeat_stale is not None
    assert settings.heartbeat_stale.seconds == 90
    assert settings.timeouts() == (120, 120)
    assert settings.cleanup is not None
    assert settings.cleanup.path == pytester.path / "bin" / "cleanup"
    assert settings.inventory is not None
    assert settings.inventory.path is not None
    assert settings.inventory.path.name == "sh"
    assert settings.evidence_dir == pytester.path / "evidence"
    assert settings.ledger_path == pytester.path / ".routerd-qual" / "ledger.jsonl"
    assert settings.limits is None
    assert not settings.require_lifecycle


def test_ini_paths_are_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    suite = pytester.mkdir("suite")
    (suite / "pytest.ini").write_text(
        "[pytest]\n"
        "qualification_cleanup_command = tools/cleanup\n"
        "qualification_ledger = state/ledger.jsonl\n"
        "qualification_require_lifecycle = true\n"
    )
    config = pytester.parseconfig("-c", str(suite / "pytest.ini"))
    settings = lifecycle_settings_from_config(config)
    assert settings.cleanup is not None
    assert settings.cleanup.path == suite / "tools" / "cleanup"
    assert settings.cleanup.origin == "ini qualification_cleanup_command"
    assert settings.ledger_path == suite / "state" / "ledger.jsonl"
    assert settings.require_lifecycle


def test_a_bad_duration_option_is_a_usage_error_naming_it(
    pytester: pytest.Pytester,
) -> None:
    config = pytester.parseconfig("--qualification-ttl=90x")
    with pytest.raises(pytest.UsageError) as caught:
        lifecycle_settings_from_config(config)
    assert str(caught.value) == (
        "--qualification-ttl: '90x' is not a duration: write a positive whole number "
        "without a leading zero followed by s, m, h or d, such as 90s, 75m or 2h "
        "(the value came from the command line)"
    )


def test_a_bad_duration_in_the_ini_names_the_key_and_file(
    pytester: pytest.Pytester,
) -> None:
    ini = pytester.makeini("[pytest]\nqualification_heartbeat_stale = 0m\n")
    config = pytester.parseconfig()
    with pytest.raises(pytest.UsageError) as caught:
        lifecycle_settings_from_config(config)
    assert str(caught.value).startswith("--qualification-heartbeat-stale: '0m' is not")
    assert str(caught.value).endswith(
        f"(the value came from the ini key qualification_heartbeat_stale in {ini})"
    )


def test_the_default_evidence_directory_is_one_per_run(tmp_path: Path) -> None:
    settings = LifecycleSettings(ledger_path=tmp_path / "l", rootdir=tmp_path)
    assert settings.evidence_dir_for("run-1") == (
        tmp_path / ".routerd-qual" / "evidence" / "run-1"
    )
    with pytest.raises(LifecycleError):
        settings.evidence_dir_for("..")


def test_a_bare_command_is_looked_up_on_path(tmp_path: Path) -> None:
    assert resolve_command("cleanup", "sh", "x", tmp_path).problem() is None
    missing = resolve_command("cleanup", "no-such-cleanup-tool", "x", tmp_path)
    assert missing.path is None
    assert missing.problem() == (
        "cleanup command 'no-such-cleanup-tool' (from x) is not found on PATH"
    )


def test_settings_survive_the_trip_to_the_watchdog(tmp_path: Path) -> None:
    settings = LifecycleSettings(
        ledger_path=tmp_path / "ledger.jsonl",
        rootdir=tmp_path,
        evidence_dir=tmp_path / "evidence",
        cleanup=LifecycleCommand("cleanup", "c", "ini x", tmp_path / "c"),
        ttl=DurationOption(60, "1m", "--qualification-ttl"),
        limits=Limits(60, 10, 5, 6),
        kill_grace=0.5,
    )
    assert LifecycleSettings.from_json(json.loads(json.dumps(settings.to_json()))) == (
        settings
    )


# ------------------------------------------------------------------- preflight rules


@pytest.fixture
def certified(tmp_path: Path) -> SampleCertification:
    """A passing certification valid for 1h with a TTL of 45m and stale 10m."""
    return write_sample_certification(tmp_path / "lab")


def manifest_of(sample: SampleCertification) -> CertificationManifest:
    return CertificationManifest.model_validate(sample.manifest)


def request_of(sample: SampleCertification) -> Request:
    return Request(
        manifest_path=sample.manifest_path,
        environment=sample.environment,
        topology=sample.topology,
        providers=sample.providers,
        scripts_root=sample.scripts_root,
    )


def lifecycle_reasons(
    settings: LifecycleSettings,
    sample: SampleCertification,
    now: pendulum.DateTime | None = None,
) -> list[Reason]:
    reasons: list[Reason] = []
    sha256 = hashlib.sha256(sample.manifest_path.read_bytes()).hexdigest()
    for rule in lifecycle_preflight_rules(settings):
        reasons.extend(
            rule(
                request_of(sample),
                manifest_of(sample),
                now or pendulum.now("UTC"),
                sha256,
            )
        )
    return reasons


def settings_for(tmp_path: Path, **changes: Any) -> LifecycleSettings:
    base = LifecycleSettings(
        ledger_path=tmp_path / "ledger.jsonl", rootdir=tmp_path / "root"
    )
    return replace(base, **changes)


def executable(path: Path, body: str = "exit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_certified_run_passes_the_lifecycle_rules(
    tmp_path: Path, certified: SampleCertification
) -> None:
    assert lifecycle_reasons(settings_for(tmp_path), certified) == []


def test_the_limits_default_to_the_certified_lifecycle(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(tmp_path).certified_by(manifest_of(certified))
    assert settings.limits == Limits(2700, 600, 900, 900)
    shorter = settings_for(
        tmp_path,
        ttl=DurationOption(600, "10m", "--qualification-ttl"),
        heartbeat_stale=DurationOption(60, "1m", "--qualification-heartbeat-stale"),
        cleanup_timeout=DurationOption(30, "30s", "--qualification-cleanup-timeout"),
    ).certified_by(manifest_of(certified))
    assert shorter.limits == Limits(600, 60, 30, 30)


def test_options_may_not_extend_what_was_certified(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(
        tmp_path,
        ttl=DurationOption(7200, "2h", "--qualification-ttl"),
        heartbeat_stale=DurationOption(900, "15m", "ini qualification_heartbeat_stale"),
    )
    assert lifecycle_reasons(settings, certified) == [
        Reason(
            "lifecycle-limit",
            "--qualification-ttl 2h is longer than the certified run.lifecycle.ttl "
            "45m: an option may only shorten it; pass at most 45m or drop it",
        ),
        Reason(
            "lifecycle-limit",
            "ini qualification_heartbeat_stale 15m is longer than the certified "
            "run.lifecycle.heartbeatStale 10m: an option may only shorten it; pass "
            "at most 10m or drop it",
        ),
    ]
    with pytest.raises(LifecycleError, match="an option may only shorten it"):
        settings.certified_by(manifest_of(certified))


def test_the_cleanup_timeout_may_only_shorten_certified_timeouts(
    tmp_path: Path,
) -> None:
    def timeouts(manifest: dict[str, Any]) -> None:
        manifest["run"]["lifecycle"].update(cleanupTimeout="20m", inventoryTimeout="5m")

    sample = write_sample_certification(tmp_path / "lab", mutate=timeouts)
    assert settings_for(tmp_path).certified_by(manifest_of(sample)).limits == Limits(
        2700, 600, 1200, 300
    )
    option = DurationOption(600, "10m", "--qualification-cleanup-timeout")
    longer = settings_for(tmp_path, cleanup_timeout=option)
    assert lifecycle_reasons(longer, sample) == [
        Reason(
            "lifecycle-limit",
            "--qualification-cleanup-timeout 10m is longer than the certified "
            "run.lifecycle.inventoryTimeout 5m: an option may only shorten it; pass "
            "at most 5m or drop it",
        )
    ]
    shorter = replace(longer, cleanup_timeout=replace(option, seconds=240, text="4m"))
    assert lifecycle_reasons(shorter, sample) == []
    assert shorter.certified_by(manifest_of(sample)).limits == Limits(
        2700, 600, 240, 240
    )


def test_the_heartbeat_must_go_stale_before_the_ttl(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(tmp_path, ttl=DurationOption(600, "10m", "--x"))
    assert lifecycle_reasons(settings, certified) == [
        Reason(
            "lifecycle-limit",
            "the heartbeat stale time 10m is not shorter than the TTL 10m: a stalled "
            "run would only be caught by the TTL; pass a shorter "
            "--qualification-heartbeat-stale",
        )
    ]


def test_a_certification_that_expires_within_the_ttl_is_refused(
    tmp_path: Path,
) -> None:
    sample = write_sample_certification(tmp_path / "lab", valid_for=timedelta(hours=1))
    issued = pendulum.parse(sample.manifest["issuedAt"])
    assert isinstance(issued, pendulum.DateTime)
    reasons = lifecycle_reasons(settings_for(tmp_path), sample, issued.add(minutes=30))
    assert reasons == [
        Reason(
            "lifecycle-expiry",
            f"the certification expires at {sample.manifest['expiresAt']}, in "
            "30m 00s, before the run's TTL of 45m would end: a run may not outlive "
            "its certification; recertify, or pass --qualification-ttl 30m or less",
        )
    ]
    shortened = settings_for(tmp_path, ttl=DurationOption(1800, "30m", "--x"))
    assert lifecycle_reasons(shortened, sample, issued.add(minutes=30)) == []


def test_a_spent_manifest_is_refused(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(tmp_path)
    manifest = manifest_of(certified)
    Ledger(settings.ledger_path).record_spent(
        manifest.manifest_id, SHA_A, "run-earlier", "infra_failure", WHEN
    )
    assert lifecycle_reasons(settings, certified) == [
        Reason(
            "spent",
            f"manifest {manifest.manifest_id} was spent by run run-earlier "
            "(infra_failure) at 2030-01-02T03:04:05.000Z, ledger line 1: the next "
            "qualification attempt must reference a new passing certification; "
            "recertify the environment",
        )
    ]


def test_the_lifecycle_rules_refuse_through_the_preflight(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(tmp_path)
    settings.ledger_path.write_text("{not json\n")
    verdict = run_preflight(
        request_of(certified), extra_rules=lifecycle_preflight_rules(settings)
    )
    assert not verdict.go
    assert [reason.rule for reason in verdict.reasons] == ["ledger"]
    assert "is corrupt at line 1" in verdict.reasons[0].message


def test_a_required_lifecycle_needs_both_commands(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(
        tmp_path,
        require_lifecycle=True,
        inventory=resolve_command("inventory", "sh", "--x", tmp_path),
    )
    assert lifecycle_reasons(settings, certified) == [
        Reason(
            "lifecycle-command",
            "qualification_require_lifecycle is set but no cleanup command was "
            "given: pass --qualification-cleanup-command CMD (ini "
            "qualification_cleanup_command)",
        )
    ]


def test_a_command_that_cannot_run_is_refused_before_the_run(
    tmp_path: Path, certified: SampleCertification
) -> None:
    not_executable = tmp_path / "cleanup.sh"
    not_executable.write_text("#!/bin/sh\n")
    settings = settings_for(
        tmp_path,
        cleanup=resolve_command(
            "cleanup", str(not_executable), "--qualification-cleanup-command", tmp_path
        ),
        inventory=resolve_command(
            "inventory", "./absent", "ini qualification_inventory_command", tmp_path
        ),
    )
    assert lifecycle_reasons(settings, certified) == [
        Reason(
            "lifecycle-command",
            f"cleanup command '{not_executable}' (from "
            f"--qualification-cleanup-command) names {not_executable}, which is not "
            "executable: fix the path or its mode (chmod +x) before the run starts",
        ),
        Reason(
            "lifecycle-command",
            "inventory command './absent' (from ini qualification_inventory_command) "
            f"names {tmp_path / 'absent'}, which does not exist: fix the path or its "
            "mode (chmod +x) before the run starts",
        ),
    ]


def test_a_run_id_that_was_cleaned_up_is_not_run_again(
    tmp_path: Path, certified: SampleCertification
) -> None:
    settings = settings_for(tmp_path)
    run_id = manifest_of(certified).run.run_id
    evidence = settings.evidence_dir_for(run_id)
    evidence.mkdir(parents=True)
    (evidence / EvidenceFile.cleanup_claim(run_id)).write_text("{}")
    reasons = lifecycle_reasons(settings, certified)
    assert [reason.rule for reason in reasons] == ["run-reused"]


def test_only_a_failed_step_that_ran_fails_the_lifecycle() -> None:
    assert not lifecycle_failed(0, 0)
    assert not lifecycle_failed(-1, 0)
    assert lifecycle_failed(0, 124)
    assert lifecycle_failed(3, -1)


# --------------------------------------------------------------------------- ledger


def test_a_missing_ledger_has_spent_nothing(tmp_path: Path) -> None:
    assert Ledger(tmp_path / "absent" / "ledger.jsonl").spent_reasons("m", SHA_A) == []


def test_a_spent_manifest_is_known_by_id_and_by_bytes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "ledger.jsonl")
    ledger.record_spent("cert-1", SHA_A, "run-1", "infra_failure", WHEN)
    assert ledger.spent_reasons("cert-2", SHA_B) == []
    [by_id] = ledger.spent_reasons("cert-1", SHA_B)
    assert by_id.startswith("manifest cert-1 was spent by run run-1 (infra_failure)")
    [by_bytes] = ledger.spent_reasons("cert-9", SHA_A)
    assert by_bytes.startswith(
        "these manifest bytes (sha256 aaaaaaaaaaaa) under ID cert-1 was spent"
    )
    line = json.loads(ledger.path.read_text())
    assert line == {
        "schemaVersion": "routerd-qual-ledger/v1",
        "manifestId": "cert-1",
        "manifestSha256": SHA_A,
        "runId": "run-1",
        "classification": "infra_failure",
        "spentAt": "2030-01-02T03:04:05.000Z",
    }


def test_a_corrupt_line_refuses_rather_than_forgets(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record_spent("cert-1", SHA_A, "run-1", "infra_failure", WHEN)
    with ledger.path.open("a") as handle:
        handle.write('{"manifestId": "cert-2"}\n\n[1]\n')
    ledger.record_spent("cert-3", SHA_B, "run-3", "infra_failure", WHEN)
    assert ledger.spent_reasons("cert-4") == [
        f"the ledger {ledger.path} is corrupt at line 2 (line 2: the line has no "
        "manifestSha256 string; line 4: the line must be a JSON object at the top "
        "level, not an array): a spent manifest may be hidden there; restore the "
        "ledger or repair the line by hand, keeping every entry"
    ]


def test_a_torn_last_line_stays_corrupt_after_the_next_append(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.path.write_text('{"manifestId": "cert-1", "manifestSha')
    ledger.record_spent("cert-2", SHA_B, "run-2", "infra_failure", WHEN)
    reasons = ledger.spent_reasons("cert-2", SHA_B)
    assert len(reasons) == 2
    assert reasons[0].startswith(f"the ledger {ledger.path} is corrupt at line 1 ")
    assert reasons[1].startswith("manifest cert-2 was spent by run run-2")


def test_an_unreadable_ledger_refuses(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").mkdir()
    [reason] = Ledger(tmp_path / "ledger.jsonl").spent_reasons("cert-1")
    assert reason.startswith(
        "the ledger of spent manifests cannot be read ("
        f"{tmp_path / 'ledger.jsonl'} is a directory, not a file): the preflight "
        "cannot tell whether this manifest was spent"
    )


def test_an_entry_that_would_read_back_as_corrupt_is_not_written(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(ValueError, match="one-line sha256"):
        ledger.record_spent("cert-1", "", "run-1", "infra_failure", WHEN)
    assert not ledger.path.exists()


_APPENDER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from pathlib import Path
    from pytest_routerd_qual.ledger import Ledger

    ledger = Ledger(Path(sys.argv[1]))
    for n in range(int(sys.argv[3])):
        ledger.record_spent(
            f"cert-{sys.argv[2]}-{n}", "c" * 64, "run", "infra_failure",
            datetime.now(timezone.utc),
        )
    """
)


def test_runs_ending_at_once_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), str(w), "40"])
        for w in range(3)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    entries = Ledger(path).entries()
    assert len(entries) == 120
    assert len(path.read_text().splitlines()) == 120
    assert Ledger(path).spent_reasons("cert-2-39")[0].startswith("manifest cert-2-39")
    assert Ledger(path).spent_reasons("cert-x") == []


# -------------------------------------------------------------------------- repairs


@repair_action
def regenerate_config_disk(vmid: int, *, size_mb: int = 4) -> str:
    """Regenerate the NoCloud config disk of a guest."""
    return f"regenerated {vmid} ({size_mb} MiB)"


@repair_action
async def restart_guest_agent(vmid: int) -> str:
    """Restart the QEMU guest agent."""
    return f"restarted {vmid}"


REPAIR_NAME = f"{__name__}.regenerate_config_disk"


@pytest.fixture
def no_qualification(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start and end each repair test outside any qualification."""
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    deactivate()


@pytest.mark.usefixtures("no_qualification")
def test_a_repair_runs_outside_a_qualification() -> None:
    assert active_run_id() is None
    assert regenerate_config_disk(9101, size_mb=8) == "regenerated 9101 (8 MiB)"
    assert asyncio.run(restart_guest_agent(9101)) == "restarted 9101"


@pytest.mark.usefixtures("no_qualification")
def test_a_repair_keeps_its_name_signature_and_docstring() -> None:
    assert regenerate_config_disk.__name__ == "regenerate_config_disk"
    assert regenerate_config_disk.__doc__ == (
        "Regenerate the NoCloud config disk of a guest."
    )
    assert str(inspect.signature(regenerate_config_disk)) == (
        "(vmid: 'int', *, size_mb: 'int' = 4) -> 'str'"
    )
    assert inspect.iscoroutinefunction(restart_guest_agent)
    assert is_repair_action(regenerate_config_disk)
    assert not is_repair_action(print)


@pytest.mark.usefixtures("no_qualification")
def test_a_repair_during_a_qualification_is_a_substrate_defect() -> None:
    with qualification_active("run-7"):
        assert os.environ[RUN_ID_ENV] == "run-7"
        with pytest.raises(SubstrateDefect) as caught:
            regenerate_config_disk(9101)
        with pytest.raises(SubstrateDefect):
            asyncio.run(restart_guest_agent(9101))
    assert caught.value.component == "repair"
    assert caught.value.detail == (
        f"repair attempted during qualification: {REPAIR_NAME}"
    )
    assert RUN_ID_ENV not in os.environ
    assert regenerate_config_disk(9101) == "regenerated 9101 (4 MiB)"


@pytest.mark.usefixtures("no_qualification")
def test_deactivating_restores_the_environment_it_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "outer-run")
    activate("inner-run")
    assert active_run_id() == "inner-run"
    deactivate()
    assert os.environ[RUN_ID_ENV] == "outer-run"


@pytest.mark.usefixtures("no_qualification")
def test_the_environment_variable_alone_refuses_repairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "run-7")
    with pytest.raises(SubstrateDefect, match="repair attempted during qualification"):
        regenerate_config_disk(9101)


_SDK_HELPER = textwrap.dedent(
    """
    from pytest_routerd_qual.defects import SubstrateDefect
    from pytest_routerd_qual.repair import repair_action

    @repair_action
    def patch_route():
        print("patched")

    try:
        patch_route()
    except SubstrateDefect as exc:
        print(exc)
    """
)


@pytest.mark.usefixtures("no_qualification")
def test_helper_processes_of_a_qualification_refuse_repairs_too() -> None:
    def helper() -> str:
        return subprocess.run(
            [sys.executable, "-c", _SDK_HELPER],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert helper() == "patched\n"
    with qualification_active("run-7"):
        assert helper() == (
            "substrate defect in repair: repair attempted during qualification: "
            "__main__.patch_route\n"
        )
