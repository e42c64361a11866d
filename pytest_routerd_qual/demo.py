"""``routerd-qual demo``: the example qualification suite, end to end, on a fake lab.

:func:`run_demo` lays out a working directory::

    suite/    a copy of the example suite (conftest_examples in a checkout)
    lab/      a fresh sample certification: manifest, routerd artifact, scripts
    results/  the qualification result, the JUnit report and the lab's event log

then runs the suite under the plugin in a pytest subprocess, exactly as a CI job
would, and returns that pytest's exit code: 0 on a healthy lab, 11 when the lab is
told to break its substrate, 1 when it is told to break routerd, 10 when the
certification has expired.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .testing import SampleCertification, write_sample_certification

#: What ``--break`` may name.
BREAKS = ("substrate", "product", "certification")
#: The breaks the simulated lab performs itself, told through this variable.
LAB_BREAKS = ("substrate", "product")
LAB_BREAK_ENV = "ROUTERD_LAB_BREAK"
LAB_EVENTS_ENV = "ROUTERD_LAB_EVENTS"
#: Variables of an enclosing pytest-xdist run that must not leak into the demo's
#: own session (the demo's tests start it from inside an xdist worker).
_OUTER_SESSION_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT")
PREFIX = "routerd-qual demo:"


def example_suite() -> Path:
    """The directory of the example qualification suite shipped with the plugin.

    A wheel carries it inside the package (``pyproject.toml`` maps
    ``conftest_examples`` to ``pytest_routerd_qual/examples``); a source checkout,
    and so an editable install, keeps it at the top of the checkout.
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "examples", package.parent / "conftest_examples"):
        if (candidate / "conftest.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"the example suite is missing from {package}: reinstall pytest-routerd-qual"
    )


@dataclass(frozen=True)
class DemoLayout:
    """Where one demo run keeps its suite, its certification and its evidence."""

    workdir: Path

    @property
    def suite(self) -> Path:
        return self.workdir / "suite"

    @property
    def lab(self) -> Path:
        return self.workdir / "lab"

    @property
    def results(self) -> Path:
        return self.workdir / "results"

    @property
    def result(self) -> Path:
        return self.results / "qualification-result.json"

    @property
    def junit(self) -> Path:
        return self.results / "junit.xml"

    @property
    def events(self) -> Path:
        return self.results / "lab-events.jsonl"


def prepare(layout: DemoLayout, break_: str | None) -> SampleCertification:
    """Copy the suite, mint its certification and clear the previous evidence."""
    shutil.copytree(
        example_suite(),
        layout.suite,
        # Caches of tools that ran in the checkout are no part of the suite.
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
        dirs_exist_ok=True,
    )
    # A reused --workdir must not show the evidence of an earlier run as this one's.
    for stale in (layout.result, layout.junit, layout.events):
        stale.unlink(missing_ok=True)
    layout.results.mkdir(parents=True, exist_ok=True)
    return mint_certification(layout.lab, expired=break_ == "certification")


def mint_certification(directory: Path, *, expired: bool) -> SampleCertification:
    """A certification of the example lab, valid for the next hour or expired.

    Each has IDs of its own, so that no ledger mistakes a fresh one for a manifest
    an earlier demo already spent.
    """
    now = datetime.now(timezone.utc).replace(microsecond=0)
    issued = now - timedelta(hours=2) if expired else now
    tag = f"{issued:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    return write_sample_certification(
        directory,
        issued_at=issued,
        valid_for=timedelta(hours=1),
        manifest_id=f"cert-lab-sim-demo-{tag}",
        run_id=f"run-lab-sim-demo-{tag}",
    )


def pytest_command(
    layout: DemoLayout, sample: SampleCertification, extra: Sequence[str]
) -> list[str]:
    """The pytest command line of the demo run; the plugin loads as installed."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *sample.pytest_args(),
        f"--qualification-result={layout.result}",
        f"--junitxml={layout.junit}",
    ]
    # Piped output loses pytest's colours; keep them when a person is watching.
    if sys.stdout.isatty() and not any(a.startswith("--color") for a in extra):
        command.append("--color=yes")
    return [*command, *extra]


def demo_environment(layout: DemoLayout, break_: str | None) -> dict[str, str]:
    """The environment of the pytest subprocess: this one, plus the lab's orders."""
    env = {k: v for k, v in os.environ.items() if k not in _OUTER_SESSION_ENV}
    env.pop(LAB_BREAK_ENV, None)
    if break_ in LAB_BREAKS:
        env[LAB_BREAK_ENV] = str(break_)
    env[LAB_EVENTS_ENV] = str(layout.events)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def stream(command: Sequence[str], cwd: Path, env: dict[str, str]) -> int:
    """Run ``command``, copying its output to ``sys.stdout`` line by line."""
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
            code = child.wait()
        except KeyboardInterrupt:
            # The child got the same Ctrl-C and ends its own session: wait for its
            # verdict rather than leave it behind.
            code = child.wait()
    # A child killed by a signal reports -N; a shell would say 128+N.
    return code if code >= 0 else 128 - code


def classification_line(layout: DemoLayout, code: int) -> str:
    """The run's classification as its result file records it."""
    try:
        document = json.loads(layout.result.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{PREFIX} no result to read ({exc}); exit {code}"
    return (
        f"{PREFIX} classification {document.get('classification')} "
        f"(status {document.get('status')}, exit {code})"
    )


def report(layout: DemoLayout, code: int, *, kept: bool) -> list[str]:
    """The lines printed after pytest's own summary."""
    lines = [
        f"{PREFIX} {label} {path}{'' if path.exists() else ' (not written)'}"
        for label, path in (
            ("result ", layout.result),
            ("junit  ", layout.junit),
            ("lab log", layout.events),
        )
    ]
    lines.append(classification_line(layout, code))
    if not kept:
        lines.append(
            f"{PREFIX} {layout.workdir} is removed on exit; "
            "pass --keep or --workdir DIR to keep it"
        )
    return lines


def run_demo(
    break_: str | None,
    workdir: Path | None,
    keep: bool,
    extra_pytest_args: Sequence[str] = (),
) -> int:
    """Run the example suite on the simulated lab and return pytest's exit code.

    ``break_`` is None or one of :data:`BREAKS`. With ``workdir`` the run happens
    there and stays; otherwise in a temporary directory removed at the end unless
    ``keep``.
    """
    if break_ is not None and break_ not in BREAKS:
        raise ValueError(f"unknown break {break_!r}; use one of {', '.join(BREAKS)}")
    kept = keep or workdir is not None
    root = workdir or Path(tempfile.mkdtemp(prefix="routerd-qual-demo-"))
    layout = DemoLayout(root.resolve())
    try:
        sample = prepare(layout, break_)
        print(f"{PREFIX} suite in {layout.suite}, break: {break_ or 'none'}")
        sys.stdout.flush()
        command = pytest_command(layout, sample, extra_pytest_args)
        code = stream(command, layout.suite, demo_environment(layout, break_))
        for line in report(layout, code, kept=kept):
            print(line)
        return code
    finally:
        if not kept:
            shutil.rmtree(root, ignore_errors=True)
