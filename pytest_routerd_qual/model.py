"""Typed views of a certification manifest and its run contract.

The models are built only from documents that the JSON Schema already accepted: the
schema is the authority on shape, the models give the rules typed access. Unknown
fields are ignored, so that a newer schema from a routerd checkout may add fields.
Every time is a pendulum ``DateTime`` in UTC.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Annotated, Any, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, PlainValidator

Provider = Literal["pve", "aws", "azure", "oci"]
PROVIDERS: tuple[str, ...] = ("pve", "aws", "azure", "oci")
CLOUD_PROVIDERS = frozenset({"aws", "azure", "oci"})
PVE_CERTIFIER = "certify-pve-substrate.sh"
CLOUD_CERTIFIER = "certify-cloud-substrate.sh"


def _utc(value: Any) -> pendulum.DateTime:
    if isinstance(value, pendulum.DateTime):
        return value.in_timezone("UTC")
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time string")
    parsed = _parse_stamp(value.upper())
    if parsed.utcoffset():
        try:
            parsed = parsed.astimezone(datetime.timezone.utc)
        except OverflowError:
            # A stamp such as 9999-12-31T23:59:59-01:00 is valid RFC 3339 but its
            # instant lies beyond what a Python datetime can hold in UTC.
            raise ValueError(
                f"{value!r} lies outside the years 1 to 9999 in UTC"
            ) from None
    # Built field by field: pendulum.instance(...).in_timezone("UTC") costs eight
    # times as much, which a manifest of 10,000 checks pays 10,000 times.
    return pendulum.DateTime(
        parsed.year,
        parsed.month,
        parsed.day,
        parsed.hour,
        parsed.minute,
        parsed.second,
        parsed.microsecond,
        tzinfo=pendulum.UTC,
    )


def _parse_stamp(text: str) -> datetime.datetime:
    """An aware datetime from a stamp the schema accepted.

    The standard library's parser (Python 3.11+ reads RFC 3339) is four times
    faster than pendulum's, which stays the fallback for older Pythons.
    """
    with contextlib.suppress(ValueError):
        parsed = datetime.datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            return parsed
    fallback = pendulum.parse(text)
    if not isinstance(fallback, pendulum.DateTime):
        raise ValueError(f"{text!r} is not a date-time")
    return fallback


Stamp = Annotated[pendulum.DateTime, PlainValidator(_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, arbitrary_types_allowed=True
    )


class Certifier(_Model):
    name: str
    version: str | None = None
    result: str
    started_at: Stamp | None = Field(None, alias="startedAt")
    finished_at: Stamp | None = Field(None, alias="finishedAt")


class CertificationCheck(_Model):
    name: str
    component: str
    provider: str | None = None
    target: str | None = None
    result: str
    checked_at: Stamp = Field(alias="checkedAt")
    summary: str | None = None


class Repair(_Model):
    component: str
    provider: str | None = None
    target: str | None = None
    action: str
    result: str
    verified_by: str = Field(alias="verifiedBy")
    repaired_at: Stamp | None = Field(None, alias="repairedAt")


class RouterdArtifact(_Model):
    version: str
    commit: str
    path: str
    sha256: str
    target: str
    parent_main_commit: str | None = Field(None, alias="parentMainCommit")
    canonical_remote: str | None = Field(None, alias="canonicalRemote")
    script_blobs: dict[str, str] = Field(default_factory=dict, alias="scriptBlobs")


class QaImplementation(_Model):
    commit: str
    canonical_remote: str = Field(alias="canonicalRemote")
    script_blobs: dict[str, str] = Field(alias="scriptBlobs")


class RunProvider(_Model):
    name: str
    profile: str
    region: str
    auth_mode: str = Field(alias="authMode")


class Lifecycle(_Model):
    ttl: str
    heartbeat_stale: str = Field(alias="heartbeatStale")
    cleanup_timeout: str | None = Field(None, alias="cleanupTimeout")
    inventory_timeout: str | None = Field(None, alias="inventoryTimeout")
    max_cleanup_attempts: int | None = Field(None, alias="maxCleanupAttempts")
    max_paid_lifecycle_seconds: int | None = Field(
        None, alias="maxPaidLifecycleSeconds"
    )
    cleanup_scope: str = Field(alias="cleanupScope")


class RunContract(_Model):
    schema_version: str = Field(alias="schemaVersion")
    run_id: str = Field(alias="runId")
    environment: str
    topology: str
    state_mode: str = Field(alias="stateMode")
    routerd_artifact: RouterdArtifact = Field(alias="routerdArtifact")
    labs_commit: str | None = Field(None, alias="labsCommit")
    qa_implementation: QaImplementation | None = Field(None, alias="qaImplementation")
    providers: tuple[RunProvider, ...]
    lifecycle: Lifecycle

    @property
    def provider_names(self) -> frozenset[str]:
        return frozenset(provider.name for provider in self.providers)

    @property
    def labs_revision(self) -> str | None:
        """The labs commit the contract pins: ``labsCommit`` (v1), else the QA
        implementation's commit (v2)."""
        if self.qa_implementation is not None:
            return self.qa_implementation.commit
        return self.labs_commit


class CertificationManifest(_Model):
    """A ``release-environment-certification/v1`` document."""

    schema_version: str = Field(alias="schemaVersion")
    manifest_id: str = Field(alias="manifestId")
    environment: str
    topology: str
    status: str
    issued_at: Stamp = Field(alias="issuedAt")
    expires_at: Stamp = Field(alias="expiresAt")
    routerd_commit: str | None = Field(None, alias="routerdCommit")
    labs_commit: str | None = Field(None, alias="labsCommit")
    providers: tuple[str, ...]
    certifiers: tuple[Certifier, ...]
    checks: tuple[CertificationCheck, ...]
    repairs: tuple[Repair, ...]
    run: RunContract

    @property
    def script_blobs(self) -> tuple[tuple[str, str, str], ...]:
        """Every pinned script as ``(where, path, sha256)``, artifact first."""
        pinned = [
            ("run.routerdArtifact.scriptBlobs", path, digest)
            for path, digest in self.run.routerd_artifact.script_blobs.items()
        ]
        if self.run.qa_implementation is not None:
            pinned.extend(
                ("run.qaImplementation.scriptBlobs", path, digest)
                for path, digest in self.run.qa_implementation.script_blobs.items()
            )
        return tuple(pinned)
