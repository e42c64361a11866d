"""Sample certifications for tests and demos: a manifest with its artifact and scripts.

:func:`write_sample_certification` writes, under a directory, a routerd artifact, the
scripts the manifest pins, and a passing ``release-environment-certification/v1``
manifest that certifies them, valid from now for an hour unless told otherwise. The
returned :class:`SampleCertification` knows the options of the run it certifies::

    sample = write_sample_certification(tmp_path)
    pytester.runpytest(*sample.pytest_args())

Pass ``mutate`` to edit the manifest before it is written (to forge, expire or
mismatch it); the digests of the artifact and the scripts stay true to the files.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ARTIFACT_PATH = "artifacts/routerd-1.4.0-linux-amd64.tar"
SCRIPTS = {
    "scripts/qualify.sh": "#!/bin/sh\n# drives the routerd qualification scenarios\n",
    "scripts/matrix.sh": "#!/bin/sh\n# probes each pair of the connectivity matrix\n",
}
RELEASE_VERSION = "1.4.0"
ROUTERD_COMMIT = "4f1c2e9a7b3d5f60812a9c4e6b7d8f0a1c2e3f4a"
LABS_COMMIT = "9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3"
_PVE_VMIDS = ("pve-leaf-a", "pve-client-a", "pve-leaf-b", "pve-client-b")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sample_manifest(
    *,
    environment: str = "lab-sim",
    topology: str = "two-leaf",
    providers: Sequence[str] = ("pve", "aws"),
    issued_at: datetime | None = None,
    valid_for: timedelta = timedelta(hours=1),
    artifact_sha256: str = "0" * 64,
    script_blobs: dict[str, str] | None = None,
    manifest_id: str | None = None,
    run_id: str | None = None,
    ttl: str = "45m",
    heartbeat_stale: str = "10m",
) -> dict[str, Any]:
    """A passing manifest with a v2 run contract, as routerd's certifiers write it."""
    issued = issued_at or datetime.now(timezone.utc).replace(microsecond=0)
    suffix = issued.strftime("%Y%m%dT%H%M%SZ")
    clouds = [p for p in providers if p != "pve"]
    certifiers = []
    if "pve" in providers:
        certifiers.append(_certifier("certify-pve-substrate.sh", issued))
    if clouds:
        certifiers.append(_certifier("certify-cloud-substrate.sh", issued))
    return {
        "schemaVersion": "release-environment-certification/v1",
        "manifestId": manifest_id or f"cert-{environment}-{suffix}",
        "environment": environment,
        "topology": topology,
        "status": "pass",
        "issuedAt": _stamp(issued),
        "expiresAt": _stamp(issued + valid_for),
        "routerdCommit": ROUTERD_COMMIT,
        "labsCommit": LABS_COMMIT,
        "providers": list(providers),
        "certifiers": certifiers,
        "checks": [_check(provider, issued) for provider in providers],
        "repairs": [],
        "toolVersions": {"routerd-labs": "2.3.0"},
        "qualificationPolicy": {
            "noRepairDuringQualification": True,
            "defaultValidityHours": 24,
        },
        "run": {
            "schemaVersion": "release-environment-contract/v2",
            "runId": run_id or f"run-{environment}-{suffix}",
            "environment": environment,
            "topology": topology,
            "stateMode": "fresh-fabric-fresh-state",
            "routerdArtifact": {
                "version": RELEASE_VERSION,
                "commit": ROUTERD_COMMIT,
                "path": ARTIFACT_PATH,
                "sha256": artifact_sha256,
                "target": "linux-amd64",
            },
            "qaImplementation": {
                "commit": LABS_COMMIT,
                "canonicalRemote": "https://git.example.invalid/routerd-labs.git",
                "scriptBlobs": dict(script_blobs or {}),
            },
            "guestSSH": {"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 qual@lab"},
            "providers": [_run_provider(provider) for provider in providers],
            "tofu": {
                "workingDirectory": "tofu/lab-sim",
                "statePath": "state/terraform.tfstate",
                "variablesPath": "tofu/lab-sim/run.tfvars.json",
                "lockPath": "state/.lock",
                "outputPath": "state/outputs.json",
            },
            "pve": {
                "node": "pve-a",
                "datastore": "local-zfs",
                "bootSource": "template",
                "underlayBridge": "vmbr1",
                "captureBridge": "vmbr9",
                "managementAddressSource": "qga-dhcp",
                "vmids": {name: 9100 + i for i, name in enumerate(_all_vmids())},
            },
            "lifecycle": {
                "ttl": ttl,
                "heartbeatStale": heartbeat_stale,
                "cleanupScope": "run-id",
            },
        },
    }


def _all_vmids() -> tuple[str, ...]:
    return (*_PVE_VMIDS, "pve-rr-a", "pve-rr-b")


def _certifier(name: str, issued: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "version": "2.3.0",
        "result": "pass",
        "startedAt": _stamp(issued - timedelta(minutes=20)),
        "finishedAt": _stamp(issued - timedelta(minutes=1)),
    }


def _check(provider: str, issued: datetime) -> dict[str, Any]:
    return {
        "name": f"{provider}-bootstrap",
        "component": "pve" if provider == "pve" else "cloud",
        "provider": provider,
        "result": "pass",
        "checkedAt": _stamp(issued - timedelta(minutes=5)),
        "summary": "bootstrap, identity and quota verified",
    }


def _run_provider(provider: str) -> dict[str, str]:
    return {
        "name": provider,
        "profile": f"qual-{provider}",
        "region": "lab-1" if provider == "pve" else "eu-west-1",
        "authMode": "token" if provider == "pve" else "role",
    }


@dataclass(frozen=True)
class SampleCertification:
    """A written sample certification and the request that matches it."""

    directory: Path
    manifest_path: Path
    manifest: dict[str, Any]
    environment: str
    topology: str
    providers: tuple[str, ...]
    release: str = RELEASE_VERSION
    labs_commit: str = LABS_COMMIT

    @property
    def scripts_root(self) -> Path:
        return self.directory

    def pytest_args(self, *, manifest: bool = True) -> list[str]:
        """The pytest options of the certified run."""
        args = [
            f"--qualification-environment={self.environment}",
            f"--qualification-topology={self.topology}",
            f"--qualification-providers={','.join(self.providers)}",
            f"--qualification-scripts-root={self.scripts_root}",
        ]
        if manifest:
            args.insert(0, f"--certification-manifest={self.manifest_path}")
        return args

    def preflight_args(self) -> list[str]:
        """The ``routerd-qual preflight`` flags of the certified run."""
        return [
            "--certification",
            str(self.manifest_path),
            "--environment",
            self.environment,
            "--topology",
            self.topology,
            "--providers",
            ",".join(self.providers),
            "--scripts-root",
            str(self.scripts_root),
        ]


def write_sample_certification(
    directory: Path,
    *,
    environment: str = "lab-sim",
    topology: str = "two-leaf",
    providers: Sequence[str] = ("pve", "aws"),
    valid_for: timedelta = timedelta(hours=1),
    issued_at: datetime | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    manifest_name: str = "certification.json",
    **manifest_options: Any,
) -> SampleCertification:
    """Write an artifact, scripts and a manifest that certifies them; see the module
    docstring."""
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / ARTIFACT_PATH
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact_bytes = b"routerd " + RELEASE_VERSION.encode() + b" sample artifact\n"
    artifact.write_bytes(artifact_bytes)
    blobs = {}
    for relative, text in SCRIPTS.items():
        script = directory / relative
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(text)
        blobs[relative] = _sha256(text.encode())
    manifest = sample_manifest(
        environment=environment,
        topology=topology,
        providers=providers,
        issued_at=issued_at,
        valid_for=valid_for,
        artifact_sha256=_sha256(artifact_bytes),
        script_blobs=blobs,
        **manifest_options,
    )
    if mutate is not None:
        manifest = copy.deepcopy(manifest)
        mutate(manifest)
    path = directory / manifest_name
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return SampleCertification(
        directory=directory,
        manifest_path=path,
        manifest=manifest,
        environment=environment,
        topology=topology,
        providers=tuple(providers),
    )
