"""The certification preflight: may release qualification start on this manifest?

:func:`run_preflight` reads the manifest once, validates it against the schema, and
applies every rule of the release qualification policy to the requested run. It
collects every reason that fails rather than stopping at the first, so an operator
fixes everything in one round. It knows nothing of pytest: the plugin and the
``routerd-qual preflight`` command both call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pendulum
import pydantic

from .documents import DocumentError, RawDocument, read_json_document, sha256_of_file
from .model import (
    CLOUD_CERTIFIER,
    CLOUD_PROVIDERS,
    PROVIDERS,
    PVE_CERTIFIER,
    CertificationManifest,
)
from .schema import SchemaError, certification_validator, schema_errors

#: How far in the future ``issuedAt`` may lie (clock skew between lab and runner).
ISSUED_AT_SKEW = pendulum.duration(minutes=5)
#: The longest validity window a certification may claim.
MAX_VALIDITY = pendulum.duration(hours=168)

_HEX = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class Flags:
    """How the shell that asks names each part of a request, for messages."""

    manifest: str = "--certification-manifest PATH (or ROUTERD_CERTIFICATION_MANIFEST)"
    environment: str = "--qualification-environment"
    topology: str = "--qualification-topology"
    providers: str = "--qualification-providers"
    release: str = "--qualification-release"
    labs_commit: str = "--qualification-labs-commit"
    scripts_root: str = "--qualification-scripts-root"


#: The flags of ``routerd-qual preflight``, which are routerd's own.
COMMAND_FLAGS = Flags(
    manifest="--certification FILE",
    environment="--environment",
    topology="--topology",
    providers="--providers",
    release="--release",
    labs_commit="--labs-commit",
    scripts_root="--scripts-root",
)


@dataclass(frozen=True)
class Request:
    """The qualification run an operator asked for, never taken from the manifest."""

    manifest_path: Path | None
    environment: str | None
    topology: str | None
    providers: tuple[str, ...] | None
    scripts_root: Path
    release: str | None = None
    labs_commit: str | None = None
    schema_path: Path | None = None
    flags: Flags = field(default_factory=Flags)


@dataclass(frozen=True)
class Reason:
    """One reason the preflight refuses, with the rule that refused."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True)
class Verdict:
    """What the preflight decided, and what the run needs to know of the manifest."""

    request: Request
    checked_at: pendulum.DateTime
    reasons: tuple[Reason, ...]
    sha256: str | None = None
    manifest: CertificationManifest | None = None
    document: RawDocument | None = field(default=None, repr=False)

    @property
    def go(self) -> bool:
        return not self.reasons

    @property
    def manifest_id(self) -> str:
        return self.manifest.manifest_id if self.manifest else "unknown"

    @property
    def run_id(self) -> str:
        return self.manifest.run.run_id if self.manifest else "unknown"

    @property
    def release(self) -> str:
        """The release under test: as requested, else the certified artifact's."""
        if self.request.release:
            return self.request.release
        if self.manifest is not None:
            return self.manifest.run.routerd_artifact.version
        return "unknown"

    @property
    def time_left(self) -> pendulum.Duration | None:
        if self.manifest is None:
            return None
        return self.manifest.expires_at - self.checked_at


#: A further rule: given the request, the manifest, now, and the SHA-256 of the
#: manifest's bytes as read (never read again), yields its reasons.
Rule = Callable[
    [Request, CertificationManifest, pendulum.DateTime, str], Iterable[Reason]
]


def run_preflight(request: Request, extra_rules: Iterable[Rule] = ()) -> Verdict:
    """Decide whether qualification may start; see the module docstring."""
    now = pendulum.now("UTC")
    reasons = list(_request_reasons(request))
    if request.manifest_path is None:
        reasons.insert(
            0,
            Reason(
                "manifest-missing",
                f"no certification manifest was given: pass {request.flags.manifest}",
            ),
        )
        return Verdict(request, now, tuple(reasons))
    try:
        document = read_json_document(request.manifest_path, "the manifest")
    except DocumentError as exc:
        reasons.insert(0, Reason("manifest-unreadable", str(exc)))
        return Verdict(request, now, tuple(reasons))
    manifest, schema_reasons = _validate(request, document)
    reasons[:0] = schema_reasons
    if manifest is not None:
        reasons.extend(_manifest_reasons(request, manifest, now))
        for rule in extra_rules:
            reasons.extend(rule(request, manifest, now, document.sha256))
    return Verdict(request, now, tuple(reasons), document.sha256, manifest, document)


def _validate(
    request: Request, document: RawDocument
) -> tuple[CertificationManifest | None, list[Reason]]:
    try:
        validator = certification_validator(request.schema_path)
    except SchemaError as exc:
        return None, [Reason("schema-unusable", str(exc))]
    errors = schema_errors(validator, document.content)
    if errors:
        return None, [
            Reason("schema", f"the manifest breaks the schema at {error}")
            for error in errors
        ]
    try:
        return CertificationManifest.model_validate(document.content), []
    except pydantic.ValidationError as exc:
        # Only a custom schema looser than the packaged one gets here.
        return None, [
            Reason(
                "schema",
                "the manifest passed the schema but lacks what the policy needs at "
                f"{'.'.join(map(str, error['loc']))}: {error['msg']}",
            )
            for error in exc.errors()
        ]


def _request_reasons(request: Request) -> Iterator[Reason]:
    for name, value in (
        ("environment", request.environment),
        ("topology", request.topology),
    ):
        if not value:
            yield Reason(
                "request-incomplete",
                f"no qualification {name} was requested: pass "
                f"{getattr(request.flags, name)} NAME",
            )
    if not request.providers:
        yield Reason(
            "request-incomplete",
            f"no providers were requested: pass {request.flags.providers} "
            "LIST, for example pve,aws",
        )
        return
    for name in sorted(set(request.providers) - set(PROVIDERS)):
        yield Reason(
            "request-invalid",
            f"unknown provider {name!r} requested; known: {', '.join(PROVIDERS)}",
        )
    repeated = sorted({p for p in request.providers if request.providers.count(p) > 1})
    if repeated:
        yield Reason(
            "request-invalid",
            f"provider {', '.join(map(repr, repeated))} requested more than once",
        )
    if request.labs_commit is not None and not _HEX.fullmatch(request.labs_commit):
        yield Reason(
            "request-invalid",
            f"{request.flags.labs_commit} {request.labs_commit!r} is not a commit "
            "(7 to 40 lowercase hex digits)",
        )


def _manifest_reasons(
    request: Request, manifest: CertificationManifest, now: pendulum.DateTime
) -> Iterator[Reason]:
    yield from _status_and_time(manifest, now)
    yield from _matches_request(request, manifest)
    yield from _certifiers_and_checks(request, manifest)
    yield from _artifact(request, manifest)
    yield from _script_revisions(request, manifest)


def _status_and_time(
    manifest: CertificationManifest, now: pendulum.DateTime
) -> Iterator[Reason]:
    if manifest.status != "pass":
        yield Reason(
            "status",
            f"certification status is {manifest.status!r}, not 'pass': "
            "qualification needs a passing certification; recertify the environment",
        )
    if manifest.expires_at <= now:
        yield Reason(
            "expired",
            f"the certification expired at {_stamp(manifest.expires_at)} "
            f"({_ago(now - manifest.expires_at)} ago): recertify and use the new "
            "manifest",
        )
    if manifest.expires_at <= manifest.issued_at:
        yield Reason(
            "incoherent",
            f"expiresAt {_stamp(manifest.expires_at)} is not after issuedAt "
            f"{_stamp(manifest.issued_at)}: the manifest was hand-edited or forged",
        )
    elif manifest.expires_at - manifest.issued_at > MAX_VALIDITY:
        yield Reason(
            "incoherent",
            "the validity window from issuedAt to expiresAt is "
            f"{_ago(manifest.expires_at - manifest.issued_at)}, more than the "
            "168h a certification may claim",
        )
    if manifest.issued_at > now + ISSUED_AT_SKEW:
        yield Reason(
            "incoherent",
            f"issuedAt {_stamp(manifest.issued_at)} lies "
            f"{_ago(manifest.issued_at - now)} in the future: check the clocks, "
            "or the manifest was forged",
        )
    if manifest.status == "pass":
        failed = [
            f"certifier {c.name} ({c.result})"
            for c in manifest.certifiers
            if c.result in ("fail", "blocked")
        ] + [
            f"check {c.name} ({c.result})"
            for c in manifest.checks
            if c.result in ("fail", "blocked")
        ]
        if failed:
            yield Reason(
                "incoherent",
                "status 'pass' is contradicted by " + ", ".join(failed),
            )


def _matches_request(
    request: Request, manifest: CertificationManifest
) -> Iterator[Reason]:
    for where, certified in (
        ("environment", manifest.environment),
        ("run.environment", manifest.run.environment),
    ):
        if request.environment and certified != request.environment:
            yield _mismatch(where, certified, request.environment, "environment")
    for where, certified in (
        ("topology", manifest.topology),
        ("run.topology", manifest.run.topology),
    ):
        if request.topology and certified != request.topology:
            yield _mismatch(where, certified, request.topology, "topology")
    if not request.providers:
        return
    wanted = frozenset(request.providers)
    for where, names in (
        ("providers", frozenset(manifest.providers)),
        ("run.providers", manifest.run.provider_names),
    ):
        if names != wanted:
            yield _mismatch(
                where, ",".join(sorted(names)), ",".join(sorted(wanted)), "providers"
            )
    run_names = [provider.name for provider in manifest.run.providers]
    repeated = sorted({name for name in run_names if run_names.count(name) > 1})
    if repeated:
        yield Reason(
            "incoherent",
            f"run.providers names {', '.join(repeated)} more than once: a run "
            "contract has one entry per provider",
        )


def _mismatch(where: str, certified: str, requested: str, what: str) -> Reason:
    return Reason(
        "mismatch",
        f"the manifest's {where} is {certified!r} but the run requests "
        f"{requested!r}: use a certification of the requested {what}",
    )


def _certifiers_and_checks(
    request: Request, manifest: CertificationManifest
) -> Iterator[Reason]:
    wanted = set(request.providers or ())
    certifiers = {c.name for c in manifest.certifiers}
    needed = []
    if "pve" in wanted:
        needed.append(PVE_CERTIFIER)
    if wanted & CLOUD_PROVIDERS:
        needed.append(CLOUD_CERTIFIER)
    for name in needed:
        if name not in certifiers:
            yield Reason(
                "certifier-missing",
                f"no {name} entry among the certifiers, but the run requests "
                f"{'pve' if name == PVE_CERTIFIER else 'a cloud provider'}",
            )
    covered = {c.provider for c in manifest.checks if c.result == "pass"}
    for provider in sorted(wanted & set(PROVIDERS) - covered):
        yield Reason(
            "check-missing",
            f"no passing certification check for provider {provider!r}",
        )
    version = manifest.run.schema_version
    run = manifest.run
    if version.endswith("/v1") and (run.labs_commit is None or run.qa_implementation):
        yield Reason(
            "contract", "a v1 run contract needs labsCommit and no qaImplementation"
        )
    if version.endswith("/v2") and (run.qa_implementation is None or run.labs_commit):
        yield Reason(
            "contract", "a v2 run contract needs qaImplementation and no labsCommit"
        )


def _artifact(request: Request, manifest: CertificationManifest) -> Iterator[Reason]:
    artifact = manifest.run.routerd_artifact
    path = request.scripts_root / artifact.path
    try:
        digest = sha256_of_file(path)
    except DocumentError as exc:
        yield Reason(
            "artifact",
            f"the routerd artifact cannot be checked: {exc}; build or fetch the "
            "certified artifact first",
        )
    else:
        if digest != artifact.sha256:
            yield Reason(
                "artifact",
                f"the routerd artifact {path} has SHA-256 {digest[:12]}\u2026, "
                f"not the certified {artifact.sha256[:12]}\u2026: it is not the "
                "artifact that was certified",
            )
    release = request.release
    if release and release not in (
        artifact.version,
        artifact.commit,
        artifact.commit[:8],
    ):
        yield Reason(
            "release",
            f"{request.flags.release} {release!r} is neither the certified "
            f"artifact's version {artifact.version!r} nor its commit "
            f"{artifact.commit[:8]}",
        )


def _script_revisions(
    request: Request, manifest: CertificationManifest
) -> Iterator[Reason]:
    wanted = request.labs_commit
    if wanted and _HEX.fullmatch(wanted):
        for where, pinned in (
            ("labsCommit", manifest.labs_commit),
            (
                "run.qaImplementation.commit"
                if manifest.run.qa_implementation
                else "run.labsCommit",
                manifest.run.labs_revision,
            ),
        ):
            if pinned is None or not _same_commit(pinned, wanted):
                yield Reason(
                    "script-revision",
                    f"the manifest's {where} is {pinned or 'absent'}, but the run "
                    f"requests labs commit {wanted}",
                )
    for where, relative, digest in manifest.script_blobs:
        yield from _script_blob(request, where, relative, digest)


def _script_blob(
    request: Request, where: str, relative: str, digest: str
) -> Iterator[Reason]:
    root, flags = request.scripts_root, request.flags
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        yield Reason(
            "script-revision",
            f"{where} names {relative!r}, which is outside the scripts root",
        )
        return
    try:
        actual = sha256_of_file(root / pure)
    except DocumentError as exc:
        yield Reason(
            "script-revision",
            f"{where} pins {relative}, but {exc}: check {flags.scripts_root}",
        )
        return
    if actual != digest:
        yield Reason(
            "script-revision",
            f"{relative} has drifted from the certified revision (SHA-256 "
            f"{actual[:12]}\u2026, certified {digest[:12]}\u2026): run the scripts "
            "that were certified",
        )


def _same_commit(pinned: str, wanted: str) -> bool:
    """Two spellings of one commit: equal, or one an abbreviation of the other."""
    return pinned.startswith(wanted) or wanted.startswith(pinned)


def _stamp(moment: pendulum.DateTime) -> str:
    return moment.in_timezone("UTC").format("YYYY-MM-DD[T]HH:mm:ss[Z]")


def _ago(span: pendulum.Duration | pendulum.Interval) -> str:  # type: ignore[type-arg]
    return format_duration(span.total_seconds())


def format_duration(seconds: float) -> str:
    """A short human duration such as ``1h 05m`` or ``42s``."""
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def go_line(verdict: Verdict) -> str:
    """The one line printed when qualification may start."""
    assert verdict.manifest is not None
    assert verdict.sha256 is not None
    left = verdict.time_left
    return (
        f"certification {verdict.manifest_id} (sha256 {verdict.sha256[:12]}) "
        f"valid until {_stamp(verdict.manifest.expires_at)}, "
        f"{format_duration(left.total_seconds()) if left else '?'} left: "
        f"run {verdict.run_id} may start"
    )


def refusal_lines(verdict: Verdict) -> list[str]:
    """The block printed when qualification must not start: one line per reason."""
    path = verdict.request.manifest_path
    lines = [
        f"manifest: {path if path else '(none given)'}"
        f" (id {verdict.manifest_id}"
        + (f", sha256 {verdict.sha256[:12]})" if verdict.sha256 else ")"),
        f"{len(verdict.reasons)} reason(s) the qualification must not start:",
    ]
    lines.extend(f"  - {reason}" for reason in verdict.reasons)
    lines.append(
        "Fix the request, or obtain a new passing certification manifest: a "
        "refused manifest is never edited or repaired in place."
    )
    return lines
