"""Tests for the JSON Schemas of the certification manifest and the result."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import (
    Draft202012Validator,
)

REPO_ROOT = Path(__file__).parent.parent
DOCS_SCHEMA_DIR = REPO_ROOT / "docs" / "releases" / "manifests"
PACKAGE_SCHEMA_DIR = REPO_ROOT / "pytest_routerd_qual" / "schemas"
MANIFEST_SCHEMA_NAME = "release-environment-certification.schema.json"
RESULT_SCHEMA_NAME = "release-qualification-result.schema.json"
SCHEMA_NAMES = [MANIFEST_SCHEMA_NAME, RESULT_SCHEMA_NAME]

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
OTHER_SHA256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

Document = dict[str, Any]
PathPart = str | int
Mutation = Callable[[Document], None]


def load_schema(name: str) -> Document:
    schema: Document = json.loads((DOCS_SCHEMA_DIR / name).read_text("utf-8"))
    return schema


def make_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def manifest_validator() -> Draft202012Validator:
    return make_validator(MANIFEST_SCHEMA_NAME)


@pytest.fixture(scope="module")
def result_validator() -> Draft202012Validator:
    return make_validator(RESULT_SCHEMA_NAME)


def error_messages(validator: Draft202012Validator, doc: Document) -> list[str]:
    return [str(error.message) for error in validator.iter_errors(doc)]


# Document builders -------------------------------------------------------------


def full_v2_manifest() -> Document:
    """A v2 manifest with every optional field filled in."""
    return {
        "schemaVersion": "release-environment-certification/v1",
        "manifestId": "cert:lab-a_2026-12-03.1",
        "environment": "lab-a",
        "topology": "rr-pair",
        "status": "pass",
        "issuedAt": "2026-12-03T10:00:00Z",
        "expiresAt": "2026-12-05T10:00:00Z",
        "routerdCommit": COMMIT,
        "labsCommit": "89abcde",
        "providers": ["pve", "aws", "azure", "oci"],
        "certifiers": [
            {
                "name": "certify-pve-substrate.sh",
                "version": "3.1.0",
                "result": "pass",
                "startedAt": "2026-12-03T09:00:00Z",
                "finishedAt": "2026-12-03T09:40:00Z",
            },
            {
                "name": "certify-cloud-substrate.sh",
                "version": "2.0.4",
                "result": "pass",
                "startedAt": "2026-12-03T09:00:00Z",
                "finishedAt": "2026-12-03T09:50:00Z",
            },
        ],
        "checks": [
            {
                "name": "pve-api-reachable",
                "component": "pve",
                "provider": "pve",
                "target": "pve-node-1",
                "result": "pass",
                "checkedAt": "2026-12-03T09:10:00Z",
                "summary": "API answered over pinned TLS",
            },
            {
                "name": "aws-quota",
                "component": "cloud",
                "provider": "aws",
                "target": "ap-northeast-1",
                "result": "pass",
                "checkedAt": "2026-12-03T09:20:00Z",
                "summary": "",
            },
            {
                "name": "tofu-version",
                "component": "tooling",
                "result": "skipped",
                "checkedAt": "2026-12-03T09:21:00Z",
            },
        ],
        "repairs": [
            {
                "component": "cross-substrate",
                "provider": "azure",
                "target": "vnet-peering",
                "action": "recreated peering",
                "result": "pass",
                "verifiedBy": "certify-cloud-substrate.sh",
                "repairedAt": "2026-12-03T09:30:00Z",
            }
        ],
        "toolVersions": {"tofu": "1.8.2", "ansible-core": "2.17.0"},
        "qualificationPolicy": {
            "noRepairDuringQualification": True,
            "defaultValidityHours": 48,
        },
        "run": {
            "schemaVersion": "release-environment-contract/v2",
            "runId": "run-2026-12-03.1",
            "environment": "lab-a",
            "topology": "rr-pair",
            "stateMode": "retained-fabric-certified-repair",
            "routerdArtifact": {
                "version": "1.4.0",
                "commit": COMMIT,
                "path": "dist/routerd-1.4.0.tar.gz",
                "sha256": SHA256,
                "target": "x86_64-unknown-linux-gnu",
                "parentMainCommit": OTHER_COMMIT,
                "canonicalRemote": "https://git.example/routerd.git",
                "scriptBlobs": {"scripts/qualify.sh": OTHER_SHA256},
            },
            "qaImplementation": {
                "commit": OTHER_COMMIT,
                "canonicalRemote": "https://git.example/routerd-qa.git",
                "scriptBlobs": {
                    "qa/run.sh": SHA256,
                    "qa/lib/common.sh": OTHER_SHA256,
                },
            },
            "guestSSH": {"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 qa@lab"},
            "execution": {"driver": "pytest", "parallelism": 4},
            "limits": {"maxGuests": 6},
            "qualification": {
                "profile": "representative",
                "provisioningBudgetSeconds": 1800,
                "qualificationBudgetSeconds": 3600,
                "minimumSupervisorReserveSeconds": 300,
                "runScope": "full-representative",
            },
            "safety": {
                "pveManagementControlPlane": "none",
                "pveTLS": "pinned-ca",
            },
            "providers": [
                {
                    "name": "pve",
                    "profile": "lab",
                    "region": "site-1",
                    "authMode": "api-token",
                },
                {
                    "name": "aws",
                    "profile": "qa",
                    "region": "ap-northeast-1",
                    "authMode": "sso",
                },
                {
                    "name": "azure",
                    "profile": "qa",
                    "region": "japaneast",
                    "authMode": "oidc",
                },
                {
                    "name": "oci",
                    "profile": "qa",
                    "region": "ap-tokyo-1",
                    "authMode": "api-key",
                },
            ],
            "tofu": {
                "workingDirectory": "infra/tofu",
                "statePath": "state/run.tfstate",
                "variablesPath": "state/run.tfvars.json",
                "lockPath": "infra/tofu/.terraform.lock.hcl",
                "outputPath": "state/outputs.json",
            },
            "pve": {
                "node": "pve-node-1",
                "datastore": "local-zfs",
                "bootSource": "template",
                "underlayBridge": "vmbr1",
                "captureBridge": "vmbr9",
                "sshHost": "pve-node-1.lab",
                "tokenOwner": "qa@pve",
                "managementAddressSource": "qga-dhcp",
                "vmids": [9101, 9102, 9103, 9104, 9105, 9106],
                "templateStage": {
                    "sourceNode": "pve-node-0",
                    "sourceTemplateVMID": 9000,
                    "vmid": 9001,
                    "datastore": "local-zfs",
                },
                "rrFaultDomain": "host-redundant",
                "rrNodes": {
                    "pve-rr-a": {
                        "node": "pve-node-1",
                        "sshHost": "pve-node-1.lab",
                        "underlayBridge": "vmbr1",
                        "vmid": 9105,
                    },
                    "pve-rr-b": {
                        "node": "pve-node-2",
                        "sshHost": "pve-node-2.lab",
                        "underlayBridge": "vmbr1",
                        "vmid": 9106,
                    },
                },
            },
            "lifecycle": {
                "ttl": "75m",
                "heartbeatStale": "90s",
                "cleanupTimeout": "20m",
                "inventoryTimeout": "5m",
                "maxCleanupAttempts": 3,
                "maxPaidLifecycleSeconds": 7200,
                "cleanupScope": "run-id",
            },
        },
        "notes": "certified after peering repair",
    }


def minimal_v2_manifest() -> Document:
    """A v2 manifest with only the required fields."""
    return {
        "schemaVersion": "release-environment-certification/v1",
        "manifestId": "cert-1",
        "environment": "lab-a",
        "topology": "single",
        "status": "pass",
        "issuedAt": "2026-12-03T10:00:00Z",
        "expiresAt": "2026-12-04T10:00:00Z",
        "providers": ["pve"],
        "certifiers": [{"name": "certify-pve-substrate.sh", "result": "pass"}],
        "checks": [
            {
                "name": "pve-api-reachable",
                "component": "pve",
                "result": "pass",
                "checkedAt": "2026-12-03T09:10:00Z",
            }
        ],
        "repairs": [],
        "run": {
            "schemaVersion": "release-environment-contract/v2",
            "runId": "run-1",
            "environment": "lab-a",
            "topology": "single",
            "stateMode": "fresh-fabric-fresh-state",
            "routerdArtifact": {
                "version": "1.4.0",
                "commit": COMMIT,
                "path": "dist/routerd.tar.gz",
                "sha256": SHA256,
                "target": "x86_64-unknown-linux-gnu",
            },
            "qaImplementation": {
                "commit": OTHER_COMMIT,
                "canonicalRemote": "https://git.example/routerd-qa.git",
                "scriptBlobs": {},
            },
            "guestSSH": {"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"},
            "providers": [
                {
                    "name": "pve",
                    "profile": "lab",
                    "region": "site-1",
                    "authMode": "api-token",
                }
            ],
            "tofu": {
                "workingDirectory": "infra/tofu",
                "statePath": "state/run.tfstate",
                "variablesPath": "state/run.tfvars.json",
                "lockPath": "infra/tofu/.terraform.lock.hcl",
                "outputPath": "state/outputs.json",
            },
            "pve": {
                "node": "pve-node-1",
                "datastore": "local-zfs",
                "bootSource": "template",
                "underlayBridge": "vmbr1",
                "captureBridge": "vmbr9",
                "managementAddressSource": "qga-dhcp",
                "vmids": [9101],
            },
            "lifecycle": {
                "ttl": "75m",
                "heartbeatStale": "90s",
                "cleanupScope": "run-id",
            },
        },
    }


def as_v1(manifest: Document) -> Document:
    run = manifest["run"]
    run["schemaVersion"] = "release-environment-contract/v1"
    del run["qaImplementation"]
    del run["guestSSH"]
    run["labsCommit"] = OTHER_COMMIT
    return manifest


def full_v1_manifest() -> Document:
    """A v1 manifest with every optional field a v1 contract may carry."""
    return as_v1(full_v2_manifest())


def minimal_v1_manifest() -> Document:
    """A v1 manifest with only the required fields."""
    return as_v1(minimal_v2_manifest())


def valid_result() -> Document:
    return {
        "schemaVersion": "release-qualification-result/v1",
        "runId": "run-2026-12-03.1",
        "certificationManifestId": "cert:lab-a_2026-12-03.1",
        "release": "1.4.0",
        "status": "pass",
        "classification": "none",
        "startedAt": "2026-12-03T10:05:00Z",
        "finishedAt": "2026-12-03T11:05:00.250+09:00",
        "driverExit": 0,
        "cleanupExit": 0,
        "inventoryExit": 0,
        "watchdogPid": 4242,
        "watchdogAbort": None,
        "checks": [
            {"nodeid": "tests/test_bgp.py::test_session", "outcome": "passed"},
            {},
        ],
    }


# Mutation helpers ----------------------------------------------------------------


def _parent(doc: Document, path: tuple[PathPart, ...]) -> Any:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    return node


def set_at(*path: PathPart, value: Any) -> Mutation:
    def mutate(doc: Document) -> None:
        _parent(doc, path)[path[-1]] = value

    return mutate


def delete_at(*path: PathPart) -> Mutation:
    def mutate(doc: Document) -> None:
        del _parent(doc, path)[path[-1]]

    return mutate


def append_at(*path: PathPart, value: Any) -> Mutation:
    def mutate(doc: Document) -> None:
        _parent(doc, path)[path[-1]].append(value)

    return mutate


def case(
    case_id: str, mutation: Mutation, base: Callable[[], Document] = full_v2_manifest
) -> Any:
    """One parametrized manifest case: a base document builder and a mutation."""
    return pytest.param(base, mutation, id=case_id)


VMID_KEYS = [
    "pve-leaf-a",
    "pve-client-a",
    "pve-leaf-b",
    "pve-client-b",
    "pve-rr-a",
    "pve-rr-b",
]
VMID_OBJECT = {key: 9101 + index for index, key in enumerate(VMID_KEYS)}


def vmid_object_without(key: str) -> dict[str, int]:
    return {name: vmid for name, vmid in VMID_OBJECT.items() if name != key}


# Schema files --------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}")
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_packaged_schema_is_byte_identical_to_the_docs_copy(name: str) -> None:
    docs_copy = (DOCS_SCHEMA_DIR / name).read_bytes()
    packaged_copy = (PACKAGE_SCHEMA_DIR / name).read_bytes()
    assert packaged_copy == docs_copy


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_file_uses_two_space_indentation_and_a_trailing_newline(
    name: str,
) -> None:
    text = (DOCS_SCHEMA_DIR / name).read_text("utf-8")
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_pattern_in_the_schema_compiles_and_is_anchored(name: str) -> None:
    patterns: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                patterns.append(pattern)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(load_schema(name))
    assert patterns or name == RESULT_SCHEMA_NAME
    for pattern in patterns:
        re.compile(pattern)
        assert pattern.startswith("^"), pattern
        assert pattern.endswith("(?!\\n)$"), pattern


# Valid manifests -----------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [full_v2_manifest, minimal_v2_manifest, full_v1_manifest, minimal_v1_manifest],
)
def test_complete_manifest_is_accepted(
    manifest_validator: Draft202012Validator, build: Callable[[], Document]
) -> None:
    assert error_messages(manifest_validator, build()) == []


def test_manifest_builders_return_fresh_documents() -> None:
    first = full_v2_manifest()
    first["run"]["pve"]["vmids"].append(1)
    assert full_v2_manifest()["run"]["pve"]["vmids"] == [
        9101,
        9102,
        9103,
        9104,
        9105,
        9106,
    ]


ACCEPTED_MANIFEST_CASES = [
    case("offset +09:00", set_at("issuedAt", value="2026-12-03T19:00:00+09:00")),
    case("offset -05:00", set_at("expiresAt", value="2026-12-05T05:00:00-05:00")),
    case(
        "fractional seconds",
        set_at("checks", 0, "checkedAt", value="2026-12-03T09:10:00.123456Z"),
    ),
    case(
        "fractional seconds with offset",
        set_at("issuedAt", value="2026-12-03T19:00:00.5+09:00"),
    ),
    case(
        "tool versions with arbitrary keys",
        set_at(
            "toolVersions",
            value={"": "", "my tool/with spaces": "v1 beta", "Ünïcode": "1"},
        ),
    ),
    case("tool versions empty", set_at("toolVersions", value={})),
    case(
        "execution with arbitrary content",
        set_at(
            "run",
            "execution",
            value={"nested": {"list": [1, "two", None, True]}, "": 3.5},
        ),
    ),
    case("execution empty", set_at("run", "execution", value={})),
    case("limits with arbitrary content", set_at("run", "limits", value={"x": []})),
    case(
        "vmids object with the six keys",
        set_at("run", "pve", "vmids", value=VMID_OBJECT),
    ),
    case("vmids single element", set_at("run", "pve", "vmids", value=[1])),
    case("repairs empty", set_at("repairs", value=[])),
    case("routerdCommit seven hex digits", set_at("routerdCommit", value="abcdef0")),
    case("labsCommit forty hex digits", set_at("labsCommit", value=COMMIT)),
    case("notes empty", set_at("notes", value="")),
    case("status fail", set_at("status", value="fail")),
    case("status blocked", set_at("status", value="blocked")),
    case("status expired", set_at("status", value="expired")),
    case(
        "defaultValidityHours 1",
        set_at("qualificationPolicy", "defaultValidityHours", value=1),
    ),
    case(
        "defaultValidityHours 168",
        set_at("qualificationPolicy", "defaultValidityHours", value=168),
    ),
    case("qualificationPolicy empty", set_at("qualificationPolicy", value={})),
    case("lifecycle ttl in days", set_at("run", "lifecycle", "ttl", value="10d")),
    case("lifecycle ttl in hours", set_at("run", "lifecycle", "ttl", value="120h")),
    case("lifecycle ttl 1s", set_at("run", "lifecycle", "ttl", value="1s")),
    case(
        "runScope pve-certification-only",
        set_at("run", "qualification", "runScope", value="pve-certification-only"),
    ),
    case(
        "qualification without runScope",
        delete_at("run", "qualification", "runScope"),
    ),
    case(
        "stateMode retained-fabric-retained-state",
        set_at("run", "stateMode", value="retained-fabric-retained-state"),
    ),
    case(
        "empty scriptBlobs", set_at("run", "routerdArtifact", "scriptBlobs", value={})
    ),
    case("check failed", set_at("checks", 0, "result", value="fail")),
    case("certifier blocked", set_at("certifiers", 0, "result", value="blocked")),
]


@pytest.mark.parametrize(("build", "mutate"), ACCEPTED_MANIFEST_CASES)
def test_manifest_edge_case_is_accepted(
    manifest_validator: Draft202012Validator,
    build: Callable[[], Document],
    mutate: Mutation,
) -> None:
    doc = build()
    mutate(doc)
    assert error_messages(manifest_validator, doc) == []


# Rejected manifests --------------------------------------------------------------

REJECTED_MANIFEST_CASES = [
    # top level
    case(
        "schemaVersion v2",
        set_at("schemaVersion", value="release-environment-certification/v2"),
    ),
    case("schemaVersion missing", delete_at("schemaVersion")),
    case("manifestId with space", set_at("manifestId", value="cert 1")),
    case("manifestId with slash", set_at("manifestId", value="cert/1")),
    case("manifestId empty", set_at("manifestId", value="")),
    case("manifestId trailing newline", set_at("manifestId", value="cert-1\n")),
    case("manifestId non-ascii letter", set_at("manifestId", value="cért-1")),
    case("environment empty", set_at("environment", value="")),
    case("environment missing", delete_at("environment")),
    case("topology empty", set_at("topology", value="")),
    case("topology not a string", set_at("topology", value=7)),
    case("status unknown", set_at("status", value="passed")),
    case("status missing", delete_at("status")),
    case("issuedAt without offset", set_at("issuedAt", value="2026-12-03T10:00:00")),
    case("issuedAt date only", set_at("issuedAt", value="2026-12-03")),
    case(
        "issuedAt with space separator",
        set_at("issuedAt", value="2026-12-03 10:00:00Z"),
    ),
    case("issuedAt as epoch number", set_at("issuedAt", value=1796292000)),
    case("expiresAt not a date", set_at("expiresAt", value="next tuesday")),
    case(
        "expiresAt impossible date", set_at("expiresAt", value="2026-02-30T10:00:00Z")
    ),
    case("expiresAt missing", delete_at("expiresAt")),
    case("routerdCommit six hex digits", set_at("routerdCommit", value="abcdef")),
    case("routerdCommit 41 hex digits", set_at("routerdCommit", value=COMMIT + "0")),
    case("routerdCommit uppercase", set_at("routerdCommit", value=COMMIT.upper())),
    case("routerdCommit non-hex", set_at("routerdCommit", value="abcdefg")),
    case(
        "routerdCommit trailing newline", set_at("routerdCommit", value=COMMIT + "\n")
    ),
    case("labsCommit uppercase", set_at("labsCommit", value="ABCDEF0")),
    case("providers duplicate", set_at("providers", value=["pve", "aws", "pve"])),
    case("providers empty", set_at("providers", value=[])),
    case("providers unknown", set_at("providers", value=["pve", "gcp"])),
    case("providers not an array", set_at("providers", value="pve")),
    case("providers missing", delete_at("providers")),
    case("extra top-level property", set_at("comment", value="hello")),
    case("notes not a string", set_at("notes", value=42)),
    case("run missing", delete_at("run")),
    # certifiers
    case("certifiers empty", set_at("certifiers", value=[])),
    case("certifiers missing", delete_at("certifiers")),
    case(
        "certifier with unknown name",
        set_at("certifiers", 0, "name", value="certify-substrate.sh"),
    ),
    case("certifier missing name", delete_at("certifiers", 0, "name")),
    case("certifier missing result", delete_at("certifiers", 0, "result")),
    case(
        "certifier result skipped", set_at("certifiers", 0, "result", value="skipped")
    ),
    case("certifier version empty", set_at("certifiers", 0, "version", value="")),
    case(
        "certifier startedAt without offset",
        set_at("certifiers", 0, "startedAt", value="2026-12-03T09:00:00"),
    ),
    case("certifier extra property", set_at("certifiers", 0, "host", value="x")),
    # checks
    case("checks empty", set_at("checks", value=[])),
    case("checks missing", delete_at("checks")),
    case("check missing checkedAt", delete_at("checks", 0, "checkedAt")),
    case("check missing name", delete_at("checks", 0, "name")),
    case("check missing component", delete_at("checks", 0, "component")),
    case("check missing result", delete_at("checks", 0, "result")),
    case("check name empty", set_at("checks", 0, "name", value="")),
    case("check component unknown", set_at("checks", 0, "component", value="network")),
    case("check provider unknown", set_at("checks", 0, "provider", value="gcp")),
    case("check result unknown", set_at("checks", 0, "result", value="error")),
    case("check target empty", set_at("checks", 0, "target", value="")),
    case("check summary not a string", set_at("checks", 0, "summary", value=None)),
    case(
        "check checkedAt without offset",
        set_at("checks", 0, "checkedAt", value="2026-12-03T09:10:00"),
    ),
    case("check extra property", set_at("checks", 0, "durationSeconds", value=3)),
    # repairs
    case("repairs missing", delete_at("repairs")),
    case("repair missing verifiedBy", delete_at("repairs", 0, "verifiedBy")),
    case("repair missing action", delete_at("repairs", 0, "action")),
    case("repair missing component", delete_at("repairs", 0, "component")),
    case("repair missing result", delete_at("repairs", 0, "result")),
    case("repair verifiedBy empty", set_at("repairs", 0, "verifiedBy", value="")),
    case("repair result skipped", set_at("repairs", 0, "result", value="skipped")),
    case(
        "repair repairedAt not a date",
        set_at("repairs", 0, "repairedAt", value="yesterday"),
    ),
    case("repair extra property", set_at("repairs", 0, "ticket", value="OPS-1")),
    # toolVersions and qualificationPolicy
    case("toolVersions value not a string", set_at("toolVersions", "tofu", value=1)),
    case("toolVersions not an object", set_at("toolVersions", value=["tofu"])),
    case(
        "noRepairDuringQualification false",
        set_at("qualificationPolicy", "noRepairDuringQualification", value=False),
    ),
    case(
        "noRepairDuringQualification string true",
        set_at("qualificationPolicy", "noRepairDuringQualification", value="true"),
    ),
    case(
        "defaultValidityHours 0",
        set_at("qualificationPolicy", "defaultValidityHours", value=0),
    ),
    case(
        "defaultValidityHours 169",
        set_at("qualificationPolicy", "defaultValidityHours", value=169),
    ),
    case(
        "defaultValidityHours fractional",
        set_at("qualificationPolicy", "defaultValidityHours", value=24.5),
    ),
    case(
        "defaultValidityHours string",
        set_at("qualificationPolicy", "defaultValidityHours", value="24"),
    ),
    case(
        "qualificationPolicy extra property",
        set_at("qualificationPolicy", "allowRepair", value=False),
    ),
    # run contract
    case(
        "run schemaVersion v3",
        set_at("run", "schemaVersion", value="release-environment-contract/v3"),
    ),
    case("run schemaVersion missing", delete_at("run", "schemaVersion")),
    case("runId with space", set_at("run", "runId", value="run 1")),
    case("runId empty", set_at("run", "runId", value="")),
    case("run environment empty", set_at("run", "environment", value="")),
    case("run topology missing", delete_at("run", "topology")),
    case("stateMode unknown", set_at("run", "stateMode", value="fresh")),
    case("stateMode missing", delete_at("run", "stateMode")),
    case("run extra property", set_at("run", "owner", value="qa")),
    case(
        "v1 with qaImplementation",
        set_at(
            "run",
            "qaImplementation",
            value={
                "commit": OTHER_COMMIT,
                "canonicalRemote": "https://git.example/qa.git",
                "scriptBlobs": {},
            },
        ),
        full_v1_manifest,
    ),
    case(
        "v1 with guestSSH",
        set_at("run", "guestSSH", value={"publicKey": "ssh-ed25519 AAAA"}),
        minimal_v1_manifest,
    ),
    case("v1 without labsCommit", delete_at("run", "labsCommit"), full_v1_manifest),
    case(
        "v1 labsCommit short",
        set_at("run", "labsCommit", value="abcdef0"),
        full_v1_manifest,
    ),
    case("v2 without guestSSH", delete_at("run", "guestSSH")),
    case("v2 without qaImplementation", delete_at("run", "qaImplementation")),
    case("v2 with labsCommit", set_at("run", "labsCommit", value=COMMIT)),
    case(
        "v2 minimal with labsCommit",
        set_at("run", "labsCommit", value=COMMIT),
        minimal_v2_manifest,
    ),
    # routerdArtifact
    case(
        "routerdArtifact commit 39 chars",
        set_at("run", "routerdArtifact", "commit", value=COMMIT[:39]),
    ),
    case(
        "routerdArtifact commit uppercase",
        set_at("run", "routerdArtifact", "commit", value=COMMIT.upper()),
    ),
    case(
        "routerdArtifact commit trailing newline",
        set_at("run", "routerdArtifact", "commit", value=COMMIT + "\n"),
    ),
    case(
        "routerdArtifact sha256 63 chars",
        set_at("run", "routerdArtifact", "sha256", value=SHA256[:63]),
    ),
    case(
        "routerdArtifact sha256 65 chars",
        set_at("run", "routerdArtifact", "sha256", value=SHA256 + "0"),
    ),
    case("routerdArtifact missing path", delete_at("run", "routerdArtifact", "path")),
    case(
        "routerdArtifact missing version",
        delete_at("run", "routerdArtifact", "version"),
    ),
    case(
        "routerdArtifact missing target",
        delete_at("run", "routerdArtifact", "target"),
    ),
    case(
        "routerdArtifact version empty",
        set_at("run", "routerdArtifact", "version", value=""),
    ),
    case(
        "routerdArtifact parentMainCommit short",
        set_at("run", "routerdArtifact", "parentMainCommit", value="abcdef0"),
    ),
    case(
        "routerdArtifact canonicalRemote empty",
        set_at("run", "routerdArtifact", "canonicalRemote", value=""),
    ),
    case(
        "routerdArtifact scriptBlobs value not hex64",
        set_at(
            "run", "routerdArtifact", "scriptBlobs", "scripts/qualify.sh", value=COMMIT
        ),
    ),
    case(
        "routerdArtifact scriptBlobs value uppercase",
        set_at(
            "run",
            "routerdArtifact",
            "scriptBlobs",
            "scripts/qualify.sh",
            value=SHA256.upper(),
        ),
    ),
    case(
        "routerdArtifact scriptBlobs not an object",
        set_at("run", "routerdArtifact", "scriptBlobs", value=[SHA256]),
    ),
    case(
        "routerdArtifact extra property",
        set_at("run", "routerdArtifact", "signature", value="x"),
    ),
    # qaImplementation and guestSSH
    case(
        "qaImplementation missing scriptBlobs",
        delete_at("run", "qaImplementation", "scriptBlobs"),
    ),
    case(
        "qaImplementation missing canonicalRemote",
        delete_at("run", "qaImplementation", "canonicalRemote"),
    ),
    case(
        "qaImplementation commit short",
        set_at("run", "qaImplementation", "commit", value="abcdef0"),
    ),
    case(
        "qaImplementation scriptBlobs value not hex64",
        set_at("run", "qaImplementation", "scriptBlobs", "qa/run.sh", value="abc"),
    ),
    case(
        "qaImplementation extra property",
        set_at("run", "qaImplementation", "branch", value="main"),
    ),
    case("guestSSH publicKey empty", set_at("run", "guestSSH", "publicKey", value="")),
    case("guestSSH publicKey missing", delete_at("run", "guestSSH", "publicKey")),
    case("guestSSH extra property", set_at("run", "guestSSH", "user", value="qa")),
    # execution and limits
    case("execution not an object", set_at("run", "execution", value="fast")),
    case("limits not an object", set_at("run", "limits", value=[1, 2])),
    # qualification
    case("qualification missing profile", delete_at("run", "qualification", "profile")),
    case(
        "qualification missing provisioningBudgetSeconds",
        delete_at("run", "qualification", "provisioningBudgetSeconds"),
    ),
    case(
        "qualification missing qualificationBudgetSeconds",
        delete_at("run", "qualification", "qualificationBudgetSeconds"),
    ),
    case(
        "qualification missing minimumSupervisorReserveSeconds",
        delete_at("run", "qualification", "minimumSupervisorReserveSeconds"),
    ),
    case(
        "qualification budget 0",
        set_at("run", "qualification", "qualificationBudgetSeconds", value=0),
    ),
    case(
        "qualification budget string",
        set_at("run", "qualification", "provisioningBudgetSeconds", value="1800"),
    ),
    case(
        "qualification runScope unknown",
        set_at("run", "qualification", "runScope", value="partial"),
    ),
    case(
        "qualification extra property",
        set_at("run", "qualification", "retries", value=1),
    ),
    # safety
    case(
        "safety control plane not none",
        set_at("run", "safety", "pveManagementControlPlane", value="api"),
    ),
    case(
        "safety TLS not pinned-ca", set_at("run", "safety", "pveTLS", value="insecure")
    ),
    case("safety missing pveTLS", delete_at("run", "safety", "pveTLS")),
    case(
        "safety missing control plane",
        delete_at("run", "safety", "pveManagementControlPlane"),
    ),
    case("safety extra property", set_at("run", "safety", "audit", value="on")),
    # run providers
    case("run providers empty", set_at("run", "providers", value=[])),
    case("run providers missing", delete_at("run", "providers")),
    case(
        "run providers duplicate entry",
        append_at(
            "run",
            "providers",
            value={
                "name": "pve",
                "profile": "lab",
                "region": "site-1",
                "authMode": "api-token",
            },
        ),
    ),
    case(
        "run provider unknown name", set_at("run", "providers", 0, "name", value="gcp")
    ),
    case("run provider missing authMode", delete_at("run", "providers", 0, "authMode")),
    case("run provider missing region", delete_at("run", "providers", 0, "region")),
    case(
        "run provider profile empty", set_at("run", "providers", 0, "profile", value="")
    ),
    case(
        "run provider extra property",
        set_at("run", "providers", 0, "account", value="1"),
    ),
    case("run provider as plain name", set_at("run", "providers", 0, value="pve")),
    # tofu
    case("tofu missing lockPath", delete_at("run", "tofu", "lockPath")),
    case("tofu statePath empty", set_at("run", "tofu", "statePath", value="")),
    case("tofu extra property", set_at("run", "tofu", "binary", value="tofu")),
    case("tofu missing", delete_at("run", "tofu")),
    # pve
    case("pve missing", delete_at("run", "pve")),
    case("pve missing node", delete_at("run", "pve", "node")),
    case("pve missing captureBridge", delete_at("run", "pve", "captureBridge")),
    case("pve datastore empty", set_at("run", "pve", "datastore", value="")),
    case("pve sshHost empty", set_at("run", "pve", "sshHost", value="")),
    case("pve tokenOwner empty", set_at("run", "pve", "tokenOwner", value="")),
    case(
        "pve managementAddressSource static",
        set_at("run", "pve", "managementAddressSource", value="static"),
    ),
    case(
        "pve managementAddressSource missing",
        delete_at("run", "pve", "managementAddressSource"),
    ),
    case("pve extra property", set_at("run", "pve", "cluster", value="c1")),
    case("vmids missing", delete_at("run", "pve", "vmids")),
    case("vmids empty array", set_at("run", "pve", "vmids", value=[])),
    case("vmids duplicate", set_at("run", "pve", "vmids", value=[9101, 9101])),
    case("vmids zero", set_at("run", "pve", "vmids", value=[0])),
    case("vmids string element", set_at("run", "pve", "vmids", value=["9101"])),
    case("vmids fractional element", set_at("run", "pve", "vmids", value=[9101.5])),
    case("vmids empty object", set_at("run", "pve", "vmids", value={})),
    case(
        "vmids object missing a key",
        set_at("run", "pve", "vmids", value=vmid_object_without("pve-rr-b")),
    ),
    case(
        "vmids object extra key",
        set_at("run", "pve", "vmids", value={**VMID_OBJECT, "pve-leaf-c": 9200}),
    ),
    case(
        "vmids object value zero",
        set_at("run", "pve", "vmids", value={**VMID_OBJECT, "pve-leaf-a": 0}),
    ),
    case("vmids as a number", set_at("run", "pve", "vmids", value=9101)),
    case(
        "templateStage missing vmid",
        delete_at("run", "pve", "templateStage", "vmid"),
    ),
    case(
        "templateStage missing sourceNode",
        delete_at("run", "pve", "templateStage", "sourceNode"),
    ),
    case(
        "templateStage sourceTemplateVMID zero",
        set_at("run", "pve", "templateStage", "sourceTemplateVMID", value=0),
    ),
    case(
        "templateStage extra property",
        set_at("run", "pve", "templateStage", "storage", value="x"),
    ),
    case(
        "rrFaultDomain wrong",
        set_at("run", "pve", "rrFaultDomain", value="node-redundant"),
    ),
    case("rrNodes missing pve-rr-b", delete_at("run", "pve", "rrNodes", "pve-rr-b")),
    case(
        "rrNodes extra node",
        set_at(
            "run",
            "pve",
            "rrNodes",
            "pve-rr-c",
            value={
                "node": "pve-node-3",
                "sshHost": "pve-node-3.lab",
                "underlayBridge": "vmbr1",
                "vmid": 9107,
            },
        ),
    ),
    case(
        "rrNode missing vmid",
        delete_at("run", "pve", "rrNodes", "pve-rr-a", "vmid"),
    ),
    case(
        "rrNode sshHost empty",
        set_at("run", "pve", "rrNodes", "pve-rr-b", "sshHost", value=""),
    ),
    case(
        "rrNode extra property",
        set_at("run", "pve", "rrNodes", "pve-rr-a", "zone", value="a"),
    ),
    # lifecycle
    case("lifecycle missing", delete_at("run", "lifecycle")),
    case("lifecycle ttl 075m", set_at("run", "lifecycle", "ttl", value="075m")),
    case("lifecycle ttl 0s", set_at("run", "lifecycle", "ttl", value="0s")),
    case("lifecycle ttl 5w", set_at("run", "lifecycle", "ttl", value="5w")),
    case("lifecycle ttl without unit", set_at("run", "lifecycle", "ttl", value="75")),
    case("lifecycle ttl with space", set_at("run", "lifecycle", "ttl", value="75 m")),
    case(
        "lifecycle ttl uppercase unit", set_at("run", "lifecycle", "ttl", value="75M")
    ),
    case("lifecycle ttl compound", set_at("run", "lifecycle", "ttl", value="1h30m")),
    case("lifecycle ttl negative", set_at("run", "lifecycle", "ttl", value="-5m")),
    case(
        "lifecycle ttl trailing newline",
        set_at("run", "lifecycle", "ttl", value="75m\n"),
    ),
    case(
        "lifecycle ttl non-ascii digit",
        set_at("run", "lifecycle", "ttl", value="7\u0665m"),
    ),
    case("lifecycle ttl as number", set_at("run", "lifecycle", "ttl", value=75)),
    case("lifecycle missing ttl", delete_at("run", "lifecycle", "ttl")),
    case(
        "lifecycle missing heartbeatStale",
        delete_at("run", "lifecycle", "heartbeatStale"),
    ),
    case(
        "lifecycle heartbeatStale 0m",
        set_at("run", "lifecycle", "heartbeatStale", value="0m"),
    ),
    case(
        "lifecycle cleanupTimeout 5w",
        set_at("run", "lifecycle", "cleanupTimeout", value="5w"),
    ),
    case(
        "lifecycle inventoryTimeout 05m",
        set_at("run", "lifecycle", "inventoryTimeout", value="05m"),
    ),
    case(
        "lifecycle maxCleanupAttempts 0",
        set_at("run", "lifecycle", "maxCleanupAttempts", value=0),
    ),
    case(
        "lifecycle maxCleanupAttempts boolean",
        set_at("run", "lifecycle", "maxCleanupAttempts", value=True),
    ),
    case(
        "lifecycle maxPaidLifecycleSeconds 0",
        set_at("run", "lifecycle", "maxPaidLifecycleSeconds", value=0),
    ),
    case(
        "lifecycle cleanupScope all",
        set_at("run", "lifecycle", "cleanupScope", value="all"),
    ),
    case(
        "lifecycle cleanupScope missing", delete_at("run", "lifecycle", "cleanupScope")
    ),
    case("lifecycle extra property", set_at("run", "lifecycle", "grace", value="5m")),
]


@pytest.mark.parametrize(("build", "mutate"), REJECTED_MANIFEST_CASES)
def test_manifest_violating_a_rule_is_rejected(
    manifest_validator: Draft202012Validator,
    build: Callable[[], Document],
    mutate: Mutation,
) -> None:
    doc = build()
    assert error_messages(manifest_validator, doc) == []
    mutate(doc)
    assert list(manifest_validator.iter_errors(doc))


def test_manifest_without_offset_in_issued_at_is_rejected(
    manifest_validator: Draft202012Validator,
) -> None:
    doc = full_v2_manifest()
    doc["issuedAt"] = "2026-12-03T10:00:00"
    errors = list(manifest_validator.iter_errors(doc))
    assert [list(error.absolute_path) for error in errors] == [["issuedAt"]]


def test_v2_contract_with_labs_commit_is_reported_by_name_on_the_run(
    manifest_validator: Draft202012Validator,
) -> None:
    doc = full_v2_manifest()
    doc["run"]["labsCommit"] = COMMIT
    errors = list(manifest_validator.iter_errors(doc))
    assert [list(error.absolute_path) for error in errors] == [["run"]]
    assert errors[0].message.startswith("'labsCommit' should not be valid")


def test_v1_contract_with_guest_ssh_is_reported_by_name_on_the_run(
    manifest_validator: Draft202012Validator,
) -> None:
    doc = full_v1_manifest()
    doc["run"]["guestSSH"] = {"publicKey": "ssh-ed25519 AAAA"}
    errors = list(manifest_validator.iter_errors(doc))
    assert [list(error.absolute_path) for error in errors] == [["run"]]
    assert errors[0].message.startswith("'guestSSH' should not be valid")


def test_v1_contract_without_labs_commit_names_the_missing_field(
    manifest_validator: Draft202012Validator,
) -> None:
    doc = full_v1_manifest()
    del doc["run"]["labsCommit"]
    messages = error_messages(manifest_validator, doc)
    assert messages == ["'labsCommit' is a required property"]


# Qualification result ------------------------------------------------------------

ACCEPTED_RESULT_CASES = [
    pytest.param(set_at("runId", value="unknown"), id="runId unknown"),
    pytest.param(
        set_at("certificationManifestId", value="unknown"),
        id="certificationManifestId unknown",
    ),
    pytest.param(set_at("watchdogPid", value=None), id="watchdogPid null"),
    pytest.param(set_at("watchdogPid", value=1), id="watchdogPid 1"),
    pytest.param(
        set_at("watchdogAbort", value={"reason": "ttl", "at": "2026-12-03T11:00:00Z"}),
        id="watchdogAbort object",
    ),
    pytest.param(set_at("checks", value=[]), id="checks empty"),
    pytest.param(set_at("driverExit", value=-1), id="driverExit never ran"),
    pytest.param(set_at("cleanupExit", value=-1), id="cleanupExit never ran"),
    pytest.param(set_at("inventoryExit", value=2), id="inventoryExit failing"),
    pytest.param(set_at("status", value="fail"), id="status fail"),
    pytest.param(
        set_at("classification", value="preflight_failure"),
        id="classification preflight_failure",
    ),
    pytest.param(
        set_at("classification", value="product_failure"),
        id="classification product_failure",
    ),
    pytest.param(
        set_at("classification", value="infra_failure"),
        id="classification infra_failure",
    ),
]


def test_valid_result_is_accepted(result_validator: Draft202012Validator) -> None:
    assert error_messages(result_validator, valid_result()) == []


@pytest.mark.parametrize("mutate", ACCEPTED_RESULT_CASES)
def test_result_edge_case_is_accepted(
    result_validator: Draft202012Validator, mutate: Mutation
) -> None:
    doc = valid_result()
    mutate(doc)
    assert error_messages(result_validator, doc) == []


REJECTED_RESULT_CASES = [
    pytest.param(set_at("extra", value=1), id="extra property"),
    pytest.param(
        set_at("schemaVersion", value="release-qualification-result/v2"),
        id="schemaVersion v2",
    ),
    pytest.param(set_at("runId", value=""), id="runId empty"),
    pytest.param(set_at("release", value=""), id="release empty"),
    pytest.param(set_at("status", value="error"), id="status error"),
    pytest.param(
        set_at("classification", value="unknown"), id="classification unknown"
    ),
    pytest.param(set_at("watchdogPid", value=0), id="watchdogPid 0"),
    pytest.param(set_at("watchdogPid", value="4242"), id="watchdogPid string"),
    pytest.param(set_at("watchdogAbort", value=["ttl"]), id="watchdogAbort list"),
    pytest.param(set_at("watchdogAbort", value="ttl"), id="watchdogAbort string"),
    pytest.param(set_at("checks", value=["passed"]), id="checks with a string"),
    pytest.param(set_at("checks", value=None), id="checks null"),
    pytest.param(set_at("driverExit", value="0"), id="driverExit string"),
    pytest.param(set_at("cleanupExit", value=1.5), id="cleanupExit fractional"),
    pytest.param(set_at("inventoryExit", value=None), id="inventoryExit null"),
    pytest.param(
        set_at("startedAt", value="2026-12-03T10:05:00"), id="startedAt without offset"
    ),
    pytest.param(set_at("finishedAt", value="soon"), id="finishedAt not a date"),
    *(pytest.param(delete_at(key), id=f"missing {key}") for key in valid_result()),
]


@pytest.mark.parametrize("mutate", REJECTED_RESULT_CASES)
def test_result_violating_a_rule_is_rejected(
    result_validator: Draft202012Validator, mutate: Mutation
) -> None:
    doc = valid_result()
    mutate(doc)
    assert list(result_validator.iter_errors(doc))
