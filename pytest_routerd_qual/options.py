"""Every setting of the plugin, declared once for its option and its ini key.

Each setting has a command-line option and an ini key of the same name (dashes for
underscores); a few also read an environment variable. Precedence is option, then
environment variable, then ini. Paths from an ini file are taken relative to that
file's directory; paths from the command line or the environment, relative to the
directory pytest was started in. This module imports only the standard library and
pytest, so that an idle plugin costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

Kind = Literal["string", "path", "list", "bool"]


@dataclass(frozen=True)
class Setting:
    """One setting: its option, its ini key, its help, where else it may come from."""

    option: str
    help: str
    kind: Kind = "string"
    env: str | None = None
    metavar: str | None = None

    @property
    def ini(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "--certification-manifest",
        "Certification manifest (JSON) that must allow this qualification run; "
        "passing it makes the run a qualification",
        "path",
        env="ROUTERD_CERTIFICATION_MANIFEST",
        metavar="PATH",
    ),
    Setting(
        "--certification-schema",
        "JSON Schema to validate the manifest against instead of the packaged one "
        "(for example docs/releases/manifests/"
        "release-environment-certification.schema.json of a routerd checkout)",
        "path",
        metavar="PATH",
    ),
    Setting(
        "--qualification-environment",
        "Environment the run qualifies on; the manifest must certify it",
        metavar="NAME",
    ),
    Setting(
        "--qualification-topology",
        "Topology the run qualifies on; the manifest must certify it",
        metavar="NAME",
    ),
    Setting(
        "--qualification-providers",
        "Comma-separated providers the run uses (pve, aws, azure, oci); the "
        "manifest must certify exactly this set",
        "list",
        metavar="LIST",
    ),
    Setting(
        "--qualification-release",
        "Release under test: the certified artifact's version, commit or its first "
        "8 characters",
        metavar="VERSION_OR_COMMIT",
    ),
    Setting(
        "--qualification-labs-commit",
        "Labs commit the run's scripts come from; the manifest must pin the same",
        metavar="SHA",
    ),
    Setting(
        "--qualification-scripts-root",
        "Directory that the manifest's artifact path and script blobs are relative "
        "to (default: the rootdir)",
        "path",
        metavar="DIR",
    ),
    Setting(
        "--qualification-result",
        "Write the release-qualification-result/v1 document of the run to PATH "
        "(default: .routerd-qual/result.json under the rootdir)",
        "path",
        metavar="PATH",
    ),
    Setting(
        "--qualification-cleanup-command",
        "Executable run as CMD --run-id RUN_ID --evidence-dir DIR after the session, "
        "whatever its outcome, to delete what the run created",
        metavar="CMD",
    ),
    Setting(
        "--qualification-inventory-command",
        "Executable run the same way after the cleanup, to list what is left",
        metavar="CMD",
    ),
    Setting(
        "--qualification-evidence-dir",
        "Directory for cleanup and inventory logs, the heartbeat, the watchdog's "
        "records and a copy of the manifest",
        "path",
        metavar="DIR",
    ),
    Setting(
        "--qualification-cleanup-timeout",
        "Longest a cleanup or inventory may run before its process group is ended "
        "(exit 124); a duration such as 90s, 15m, 1h",
        metavar="DURATION",
    ),
    Setting(
        "--qualification-ttl",
        "Longest the run may last; defaults to the manifest's run.lifecycle.ttl and "
        "may only shorten it",
        metavar="DURATION",
    ),
    Setting(
        "--qualification-heartbeat-stale",
        "Longest the run may go without progress; defaults to the manifest's "
        "run.lifecycle.heartbeatStale and may only shorten it",
        metavar="DURATION",
    ),
    Setting(
        "--qualification-ledger",
        "JSON-lines ledger of spent manifests (default: .routerd-qual/ledger.jsonl "
        "under the rootdir)",
        "path",
        metavar="PATH",
    ),
)

BY_OPTION = {setting.option: setting for setting in SETTINGS}

QUALIFICATION_INI = "routerd_qualification"


def add_options(parser: pytest.Parser) -> None:
    """Declare every option and ini key of the plugin."""
    group = parser.getgroup("routerd-qual", "routerd release qualification")
    for setting in SETTINGS:
        help_text = setting.help + (f" [env: {setting.env}]" if setting.env else "")
        group.addoption(
            setting.option, dest=setting.ini, metavar=setting.metavar, help=help_text
        )
        parser.addini(setting.ini, setting.help, type="string")
    parser.addini(
        "qualification_require_lifecycle",
        "Refuse to start unless cleanup and inventory commands are given and "
        "executable",
        type="bool",
        default=False,
    )
    parser.addini(
        "substrate_exceptions",
        "Further exception types, as module:Name, that count as substrate defects",
        type="linelist",
        default=[],
    )
    parser.addini(
        QUALIFICATION_INI,
        "Declare this suite a release qualification suite: it runs only after a "
        "passing certification preflight",
        type="bool",
        default=False,
    )


def gate_applies(config: pytest.Config) -> bool:
    """Whether this session is a qualification that the preflight must gate."""
    return bool(config.getini(QUALIFICATION_INI)) or bool(
        config.getoption(BY_OPTION["--certification-manifest"].ini)
    )


def raw_value(config: pytest.Config, option: str) -> tuple[str | None, str]:
    """The value of a setting and where it came from, by precedence."""
    setting = BY_OPTION[option]
    value = config.getoption(setting.ini)
    if value:
        return str(value), option
    if setting.env and os.environ.get(setting.env):
        return os.environ[setting.env], f"${setting.env}"
    ini_value = config.getini(setting.ini)
    if ini_value:
        return str(ini_value), f"ini {setting.ini}"
    return None, ""


def string_value(config: pytest.Config, option: str) -> str | None:
    value, _ = raw_value(config, option)
    return value.strip() if value and value.strip() else None


def path_value(config: pytest.Config, option: str) -> Path | None:
    """A path setting, resolved against where it was written."""
    value, origin = raw_value(config, option)
    if not value:
        return None
    path = Path(value).expanduser()
    if origin.startswith("ini ") and config.inipath is not None:
        return config.inipath.parent / path
    return config.invocation_params.dir / path


def list_value(config: pytest.Config, option: str) -> tuple[str, ...] | None:
    value = string_value(config, option)
    if value is None:
        return None
    return tuple(item.strip() for item in value.split(",") if item.strip())
