"""Properties of the preflight core: it never crashes, and no forgery gives a go.

Each property calls :func:`run_preflight` in-process on a manifest rewritten per
example; a pytester session per example would be far too slow.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias

import jsonschema
import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_routerd_qual.documents import MAX_DEPTH, DocumentError, parse_json_object
from pytest_routerd_qual.model import _utc
from pytest_routerd_qual.preflight import Reason, Request, Verdict, run_preflight
from pytest_routerd_qual.testing import (
    ARTIFACT_PATH,
    LABS_COMMIT,
    ROUTERD_COMMIT,
    write_sample_certification,
)

JsonPath: TypeAlias = tuple[str | int, ...]

PROVIDERS = ("pve", "aws", "azure", "oci")
#: The checker the schema's ``format: date-time`` uses.
DATE_TIME = jsonschema.Draft202012Validator.FORMAT_CHECKER
CERTIFIED_PROVIDERS = frozenset({"pve", "aws"})

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FIELD_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=30)


@dataclass(frozen=True)
class Lab:
    """A passing sample certification and the request it certifies, pinned hard."""

    manifest: dict[str, Any]
    request: Request

    @property
    def issued_at(self) -> datetime:
        return _parse_stamp(self.manifest["issuedAt"])

    @property
    def expires_at(self) -> datetime:
        return _parse_stamp(self.manifest["expiresAt"])

    def verdict_for_bytes(self, data: bytes) -> Verdict:
        assert self.request.manifest_path is not None
        self.request.manifest_path.write_bytes(data)
        return run_preflight(self.request)

    def verdict_for(self, manifest: Any) -> Verdict:
        return self.verdict_for_bytes(json.dumps(manifest).encode())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The sample, with the release and labs commit pinned so commits matter too."""
    sample = write_sample_certification(tmp_path_factory.mktemp("properties"))
    request = Request(
        manifest_path=sample.manifest_path,
        environment=sample.environment,
        topology=sample.topology,
        providers=sample.providers,
        scripts_root=sample.scripts_root,
        release=ROUTERD_COMMIT,
        labs_commit=LABS_COMMIT,
    )
    return Lab(sample.manifest, request)


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_well_formed(verdict: Verdict) -> None:
    assert all(isinstance(reason, Reason) for reason in verdict.reasons)
    assert all(reason.rule.strip() for reason in verdict.reasons)
    assert all(reason.message.strip() for reason in verdict.reasons)


def assert_refused(verdict: Verdict) -> None:
    assert verdict.go is False
    assert verdict.reasons != ()
    assert_well_formed(verdict)


# --- strategies -------------------------------------------------------------------

# Text that reaches every code point, lone surrogates included: JSON can escape them.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
HEX40 = st.text("0123456789abcdef", min_size=40, max_size=40)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# RFC 3339 stamps over the whole range Python can write, with any whole-minute
# offset; the first and last days of that range are drawn on purpose, where an
# offset moves the instant beyond what UTC can hold.
STAMPS = st.one_of(
    st.datetimes(timezones=OFFSETS),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=OFFSETS),
    st.datetimes(min_value=datetime(9999, 12, 31), timezones=OFFSETS),
).map(lambda moment: moment.isoformat())
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    STAMPS,
    st.sampled_from(PROVIDERS),
    HEX64,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(TEXT, children, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def paths_into(draw: st.DrawFn, document: Any) -> JsonPath:
    """A path to any value of ``document``, the root included."""
    path: list[str | int] = []
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 4)):
        keys: list[str | int] = (
            list(node) if isinstance(node, dict) else list(range(len(node)))
        )
        key = draw(st.sampled_from(keys))
        path.append(key)
        node = node[key]  # type: ignore[index]
    return tuple(path)


def substituted(document: Any, path: JsonPath, value: Any) -> Any:
    """A copy of ``document`` with ``value`` at ``path``."""
    if not path:
        return value
    result = copy.deepcopy(document)
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return result


def value_at(document: Any, path: JsonPath) -> Any:
    for key in path:
        document = document[key]
    return document


def _utc_instant(text: str) -> datetime | None:
    """The instant a valid stamp names; None when UTC cannot represent it."""
    try:
        return _parse_stamp(text.upper()).astimezone(timezone.utc)
    except OverflowError:
        return None


def _stamps_outside(
    accepted: Callable[[datetime], bool],
) -> st.SearchStrategy[Any]:
    """Values for a time field that the preflight must refuse: non-stamps, and
    stamps whose instant ``accepted`` rejects (or that UTC cannot represent)."""

    def refusable(text: str) -> bool:
        instant = _utc_instant(text)
        return instant is None or not accepted(instant)

    return st.one_of(
        STAMPS.filter(refusable),
        TEXT.filter(lambda text: not DATE_TIME.conforms(text, "date-time")),
        JSON_VALUES.filter(lambda value: not isinstance(value, str)),
    )


def _expiry_values(lab: Lab) -> st.SearchStrategy[Any]:
    def accepted(instant: datetime) -> bool:
        # Later than now and within the 168h window: the preflight's "now" comes
        # after this one, so anything at or before this "now" is already expired.
        now = datetime.now(timezone.utc)
        return now < instant <= lab.issued_at + timedelta(hours=168)

    return _stamps_outside(accepted)


def _issue_values(lab: Lab) -> st.SearchStrategy[Any]:
    def accepted(instant: datetime) -> bool:
        # A minute of margin beyond the 5 minutes of tolerated skew, for the time
        # between this draw and the preflight's own clock reading.
        latest = datetime.now(timezone.utc) + timedelta(minutes=6)
        return lab.expires_at - timedelta(hours=168) <= instant <= latest

    return _stamps_outside(accepted)


def _is_certified_provider_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(name, str) for name in value)
        and len(value) == len(set(value))
        and set(value) == CERTIFIED_PROVIDERS
    )


def _names_certified_providers(value: Any) -> bool:
    # Entries that differ only in profile, region or authMode name the same set:
    # the preflight compares names only (see the report on duplicate names).
    return (
        isinstance(value, list)
        and all(isinstance(entry, dict) for entry in value)
        and {entry.get("name") for entry in value} == CERTIFIED_PROVIDERS
    )


RUN_PROVIDERS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(PROVIDERS),
            "profile": st.sampled_from(["qual-pve", "qual-aws", "x"]),
            "region": st.sampled_from(["lab-1", "eu-west-1"]),
            "authMode": st.sampled_from(["token", "role"]),
        }
    ),
    max_size=5,
)


def _other_artifact_paths(lab: Lab) -> st.SearchStrategy[Any]:
    artifact = (lab.request.scripts_root / ARTIFACT_PATH).resolve()

    def names_the_artifact(value: Any) -> bool:
        if not isinstance(value, str) or "\0" in value:
            return False
        return (lab.request.scripts_root / value).resolve() == artifact

    candidates = st.one_of(
        st.sampled_from(
            [
                "artifacts/routerd-1.4.1-linux-amd64.tar",
                "scripts/qualify.sh",
                "certification.json",
                "artifacts",
                "artifacts/routerd-1.4.0-linux-amd64.tar/",
                "artifacts/routerd-1.4.0-linux-amd64.tar\0",
            ]
        ),
        TEXT,
        JSON_VALUES,
    )
    return candidates.filter(lambda value: not names_the_artifact(value))


def _other_than(
    original: Any, *specific: Iterable[Any] | st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, and the ``specific`` ones, except ``original``."""
    sources = [
        item if isinstance(item, st.SearchStrategy) else st.sampled_from(list(item))
        for item in specific
    ]
    return st.one_of(*sources, JSON_VALUES).filter(
        lambda value: value != original or type(value) is not type(original)
    )


FieldStrategy: TypeAlias = Callable[[Lab], st.SearchStrategy[Any]]

_SCRIPT_BLOBS: JsonPath = ("run", "qaImplementation", "scriptBlobs")

SECURITY_FIELDS: dict[JsonPath, FieldStrategy] = {
    ("status",): lambda lab: _other_than("pass", ["fail", "blocked", "expired"]),
    ("expiresAt",): _expiry_values,
    ("issuedAt",): _issue_values,
    ("environment",): lambda lab: _other_than("lab-sim", ["prod", "lab-sim ", ""]),
    ("topology",): lambda lab: _other_than("two-leaf", ["mesh", "Two-leaf"]),
    ("providers",): lambda lab: st.one_of(
        st.lists(st.sampled_from(PROVIDERS), max_size=5), JSON_VALUES
    ).filter(lambda value: not _is_certified_provider_list(value)),
    ("run", "environment"): lambda lab: _other_than("lab-sim", ["prod", "lab"]),
    ("run", "topology"): lambda lab: _other_than("two-leaf", ["mesh", "two"]),
    ("run", "providers"): lambda lab: st.one_of(RUN_PROVIDERS, JSON_VALUES).filter(
        lambda value: not _names_certified_providers(value)
    ),
    ("run", "routerdArtifact", "sha256"): lambda lab: _other_than(
        lab.manifest["run"]["routerdArtifact"]["sha256"], HEX64
    ),
    ("run", "routerdArtifact", "path"): _other_artifact_paths,
    ("run", "routerdArtifact", "commit"): lambda lab: _other_than(
        ROUTERD_COMMIT, HEX40, [ROUTERD_COMMIT[:8], ROUTERD_COMMIT.upper()]
    ),
    (*_SCRIPT_BLOBS, "scripts/qualify.sh"): lambda lab: _other_than(
        lab.manifest["run"]["qaImplementation"]["scriptBlobs"]["scripts/qualify.sh"],
        HEX64,
    ),
    (*_SCRIPT_BLOBS, "scripts/matrix.sh"): lambda lab: _other_than(
        lab.manifest["run"]["qaImplementation"]["scriptBlobs"]["scripts/matrix.sh"],
        HEX64,
    ),
    ("certifiers", 0, "result"): lambda lab: _other_than("pass", ["fail", "blocked"]),
    ("certifiers", 1, "result"): lambda lab: _other_than("pass", ["fail", "blocked"]),
    ("checks", 0, "result"): lambda lab: _other_than(
        "pass", ["fail", "blocked", "skipped"]
    ),
    ("checks", 1, "result"): lambda lab: _other_than(
        "pass", ["fail", "blocked", "skipped"]
    ),
    ("checks", 0, "provider"): lambda lab: _other_than("pve", PROVIDERS),
    ("checks", 1, "provider"): lambda lab: _other_than("aws", PROVIDERS),
}


def _field_id(path: JsonPath) -> str:
    return ".".join(str(key) for key in path)


# --- properties -------------------------------------------------------------------


def test_the_untouched_sample_is_a_go_under_the_pinned_request(lab: Lab) -> None:
    verdict = lab.verdict_for(lab.manifest)
    assert verdict.reasons == ()
    assert verdict.go is True


def _truncations(lab: Lab) -> st.SearchStrategy[bytes]:
    # Every strict prefix of an object written without trailing space lacks its
    # closing brace, so none of them is JSON.
    data = json.dumps(lab.manifest, indent=2).encode()
    return st.integers(0, len(data) - 1).map(lambda end: data[:end])


@PROPERTY_SETTINGS
@given(data=st.data())
def test_arbitrary_bytes_as_the_manifest_never_crash_and_never_go(
    lab: Lab, data: st.DataObject
) -> None:
    content = data.draw(st.one_of(st.binary(max_size=512), _truncations(lab)))
    assert_refused(lab.verdict_for_bytes(content))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_json_value_anywhere_in_a_valid_manifest_never_crashes(
    lab: Lab, data: st.DataObject
) -> None:
    path = data.draw(paths_into(lab.manifest), label="path")
    value = data.draw(JSON_VALUES, label="value")
    verdict = lab.verdict_for(substituted(lab.manifest, path, value))
    assert_well_formed(verdict)


@pytest.mark.parametrize(
    "path", list(SECURITY_FIELDS), ids=[_field_id(p) for p in SECURITY_FIELDS]
)
@FIELD_SETTINGS
@given(data=st.data())
def test_changing_a_security_relevant_field_never_gives_a_go(
    lab: Lab, path: JsonPath, data: st.DataObject
) -> None:
    assert value_at(lab.manifest, path) is not None
    value = data.draw(SECURITY_FIELDS[path](lab), label=_field_id(path))
    assert_refused(lab.verdict_for(substituted(lab.manifest, path, value)))


@pytest.mark.parametrize("manifest_path", ["a\0b.json", "/" + "x" * 5000])
def test_a_manifest_path_the_os_cannot_name_is_refused_not_raised(
    lab: Lab, manifest_path: str
) -> None:
    verdict = run_preflight(replace(lab.request, manifest_path=Path(manifest_path)))
    assert [reason.rule for reason in verdict.reasons] == ["manifest-unreadable"]
    assert_refused(verdict)


@pytest.mark.parametrize(
    ("field", "stamp"),
    [
        ("expiresAt", "9999-12-31T23:59:59-23:59"),
        ("issuedAt", "0001-01-01T00:00:00+00:01"),
    ],
)
def test_a_stamp_whose_instant_utc_cannot_hold_is_refused_not_raised(
    lab: Lab, field: str, stamp: str
) -> None:
    verdict = lab.verdict_for(substituted(lab.manifest, (field,), stamp))
    assert [str(reason) for reason in verdict.reasons] == [
        "[schema] the manifest passed the schema but lacks what the policy needs at "
        f"{field}: Value error, '{stamp}' lies outside the years 1 to 9999 in UTC"
    ]


def test_an_artifact_path_with_a_nul_byte_is_refused_not_raised(lab: Lab) -> None:
    path = ("run", "routerdArtifact", "path")
    verdict = lab.verdict_for(substituted(lab.manifest, path, "artifacts/a\0.tar"))
    root = lab.request.scripts_root
    assert [str(reason) for reason in verdict.reasons] == [
        "[artifact] the routerd artifact cannot be checked: "
        f"'{root}/artifacts/a\\x00.tar' cannot be read: no file name holds a NUL "
        "byte; build or fetch the certified artifact first"
    ]


@given(stamp=STAMPS)
def test_a_stamp_becomes_the_same_utc_instant_pendulum_computes(stamp: str) -> None:
    expected = _utc_instant(stamp)
    if expected is None:
        with pytest.raises(ValueError, match="outside the years 1 to 9999 in UTC"):
            _utc(stamp)
        return
    converted = _utc(stamp)
    assert isinstance(converted, pendulum.DateTime)
    assert converted.timezone_name == "UTC"
    assert converted == expected
    assert converted == pendulum.instance(_parse_stamp(stamp.upper())).in_timezone(
        "UTC"
    )


# A \u escape preceded by an even number of backslashes (which escape each other).
UNICODE_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*\\u)([0-9a-f]{4})")


def _reference_refusals(value: Any, depth: int = 1) -> set[str]:
    """Every reason a document with ``value`` at ``depth`` must be refused for,
    walked recursively and value by value."""
    if depth > MAX_DEPTH:
        return {"nested"}
    texts: list[str] = []
    children: list[Any] = []
    if isinstance(value, dict):
        texts, children = list(value), list(value.values())
    elif isinstance(value, list):
        children = value
    elif isinstance(value, str):
        texts = [value]
    # json.loads joins an escaped pair into one code point: a surrogate left in a
    # string stood alone.
    refusals = set()
    if any("\ud800" <= char <= "\udfff" for text in texts for char in text):
        refusals.add("surrogate")
    for child in children:
        refusals |= _reference_refusals(child, depth + 1)
    return refusals


@given(
    value=JSON_VALUES,
    wrapping=st.integers(MAX_DEPTH - 3, MAX_DEPTH + 1),
    ascii_only=st.booleans(),
    upper_escapes=st.booleans(),
    lone=st.none() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    in_key=st.booleans(),
)
def test_nesting_and_lone_surrogates_are_refused_exactly_where_they_are(
    *,
    value: Any,
    wrapping: int,
    ascii_only: bool,
    upper_escapes: bool,
    lone: str | None,
    in_key: bool,
) -> None:
    document: Any = value
    for level in range(wrapping):
        document = {"k": document} if level % 2 else [document]
    document = {"top": document}
    if lone is not None:
        # A surrogate that hypothesis's text rarely draws on its own.
        document.update({f"key{lone}": 1} if in_key else {"note": f"x{lone}y"})
    expected = _reference_refusals(document)
    data = json.dumps(document, ensure_ascii=ascii_only, allow_nan=False)
    try:
        encoded = data.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be written as UTF-8 text, only as an escape.
        encoded = json.dumps(document, ensure_ascii=True).encode("ascii")
    if upper_escapes:
        # JSON allows \uD800 as well as \ud800; an escaped backslash is no escape.
        encoded = UNICODE_ESCAPE.sub(lambda match: match[1] + match[2].upper(), encoded)
    if not expected:
        assert parse_json_object(encoded) == document
        return
    # Either reason may be found first; it must be one that applies.
    words = {"nested": "is nested deeper than", "surrogate": "unpaired UTF-16"}
    with pytest.raises(DocumentError) as refused:
        parse_json_object(encoded)
    assert any(words[reason] in str(refused.value) for reason in expected)
