"""Measure what pytest-routerd-qual costs, each figure as a side-by-side ratio.

Run from a checkout after ``pip install -e '.[test]'``::

    python benchmarks/bench.py [--quick] [--only NAME]

A subprocess figure alternates its variants round by round (the order rotates, so a
drift in machine load falls on every variant alike) and compares their medians. Wall
time is the headline; the CPU time of the pytest processes (and their children) is
printed beside it, because it moves much less than wall time when other work
competes for the machine. Everything the runs need is written to a temporary
directory that is removed at the end. See
benchmarks/README.md for what each figure means and docs/performance.md for the
figures measured so far.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import itertools
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum

from pytest_routerd_qual.classification import (
    NO_FINDING,
    RULE_PRODUCT,
    CheckBook,
    Finding,
    PhaseReport,
    Scope,
)
from pytest_routerd_qual.exitcodes import Classification
from pytest_routerd_qual.preflight import Request, run_preflight
from pytest_routerd_qual.result import RunIdentity, build_result, write_atomic
from pytest_routerd_qual.testing import SampleCertification, write_sample_certification

#: The entry-point name of the plugin, as ``-p no:NAME`` takes it.
PLUGIN = "routerd_qual"
DISABLED = ("-p", f"no:{PLUGIN}")
FIGURES = ("idle", "active", "xdist", "preflight", "result")

QUALIFICATION_MARK = '@pytest.mark.qualification_check("readiness")'
# Without the plugin nothing declares its markers, and --strict-markers refuses them.
MARKER_CONFTEST = f'''
def pytest_configure(config):
    if not config.pluginmanager.has_plugin("{PLUGIN}"):
        config.addinivalue_line("markers", "qualification_check(kind): stand-in")
'''
STRICT_INI = "[pytest]\naddopts = --strict-markers\n"


class BenchError(Exception):
    """A measured run did not do what the benchmark expects; the message says why."""


@dataclass(frozen=True)
class Plan:
    """How many times each figure repeats its measurements."""

    rounds: int
    #: The idle difference is a few ms in a 1 s run: it takes more rounds to see.
    idle_rounds: int
    xdist_rounds: int
    warm_every_variant: bool
    probes: int
    preflight_calls: int
    preflight_budget: float
    result_runs: int


FULL = Plan(
    rounds=7,
    idle_rounds=21,
    xdist_rounds=4,
    warm_every_variant=True,
    probes=5,
    preflight_calls=20,
    preflight_budget=10.0,
    result_runs=9,
)
QUICK = Plan(
    rounds=2,
    idle_rounds=5,
    xdist_rounds=1,
    warm_every_variant=False,
    probes=2,
    preflight_calls=5,
    preflight_budget=2.0,
    result_runs=3,
)


@dataclass
class Figure:
    """One measured figure: its headline ratio, its target, and supporting lines."""

    name: str
    ratio: float
    meaning: str
    target: str
    met: bool
    lines: list[str] = field(default_factory=list)

    def headline(self) -> str:
        verdict = "met" if self.met else "MISSED"
        return (
            f"{self.name:<9} {self.ratio:6.3f}  {self.meaning} "
            f"(target {self.target}: {verdict})"
        )


# -- timing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """One run: its wall time and the CPU time (user + system) it used."""

    wall: float
    cpu: float


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(call: Callable[[], object]) -> Timing:
    """Time a call in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Runs:
    """The timings of one variant, summarised by their medians."""

    label: str
    timings: Sequence[Timing]

    @property
    def wall(self) -> float:
        return median([t.wall for t in self.timings])

    @property
    def cpu(self) -> float:
        return median([t.cpu for t in self.timings])

    def line(self) -> str:
        walls = [t.wall for t in self.timings]
        return (
            f"{self.label:<24} wall median {self.wall:6.3f} s "
            f"(min {min(walls):.3f}, max {max(walls):.3f}), "
            f"cpu median {self.cpu:6.3f} s, {len(walls)} runs"
        )


def comparison(a: Runs, b: Runs) -> list[str]:
    """The lines that set variant ``a`` against variant ``b``."""
    return [
        a.line(),
        b.line(),
        f"wall difference {(a.wall - b.wall) * 1000:+.0f} ms; "
        f"cpu ratio {a.cpu / b.cpu:.3f}, cpu difference "
        f"{(a.cpu - b.cpu) * 1000:+.0f} ms",
    ]


# -- running pytest ------------------------------------------------------------------


def subprocess_env(pycache: Path) -> dict[str, str]:
    """The environment of every measured run: bytecode cached (outside the
    checkout), and no pytest or qualification setting inherited from the shell, nor a
    CI job summary to append every run's result to."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "ROUTERD_"))
        and key not in ("PYTHONDONTWRITEBYTECODE", "GITHUB_STEP_SUMMARY")
    }
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


HYPOTHESIS = importlib.util.find_spec("hypothesis") is not None


@dataclass(frozen=True)
class Pytest:
    """Runs ``python -m pytest`` in one suite directory and times it."""

    directory: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> Timing:
        command = [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider"),
            # The test extras install hypothesis, whose plugin costs seconds a
            # session here; it is not what is measured, so both sides go without.
            *(("-p", "no:hypothesispytest") if HYPOTHESIS else ()),
        ]
        cpu, wall = children_cpu(), time.perf_counter()
        done = subprocess.run(
            [*command, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        timing = Timing(time.perf_counter() - wall, children_cpu() - cpu)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise BenchError(
                f"pytest {' '.join(args)} in {self.directory} exited "
                f"{done.returncode}:\n{tail}"
            )
        return timing


def alternate(
    variants: dict[str, Callable[[], Timing]], plan: Plan, rounds: int
) -> dict[str, Runs]:
    """Run every variant once per round, rotating the order, after a warm-up run of
    each (quick: of the first, which loads the most and so fills the bytecode
    cache)."""
    names = list(variants)
    for name in names if plan.warm_every_variant else names[:1]:
        variants[name]()
    timings: dict[str, list[Timing]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            timings[name].append(variants[name]())
    return {name: Runs(name, timings[name]) for name in names}


def write_suite(
    directory: Path, files: int, per_file: int, body: str, mark: str = ""
) -> Path:
    """A suite of ``files`` modules of ``per_file`` tests, each running ``body``."""
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text(STRICT_INI)
    (directory / "conftest.py").write_text(MARKER_CONFTEST)
    for index in range(files):
        tests = "".join(
            f"\n{mark}\ndef test_{index}_{number}():\n    {body}\n"
            for number in range(per_file)
        )
        (directory / f"test_suite_{index}.py").write_text(
            f"import time\n\nimport pytest\n{tests}"
        )
    return directory


class Certifications:
    """Mints a new sample certification for every run: a run ID is used once, so a
    second run on the same manifest would be refused."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.minted = itertools.count()

    def mint(self) -> SampleCertification:
        number = next(self.minted)
        return write_sample_certification(
            self.directory,
            manifest_name=f"certification-{number}.json",
            manifest_id=f"cert-{self.directory.name}-{number}",
            run_id=f"run-{self.directory.name}-{number}",
        )

    def args(self) -> list[str]:
        """The options of a newly certified run, its result written beside it."""
        sample = self.mint()
        result = self.directory / f"result-{sample.manifest_path.stem}.json"
        return [*sample.pytest_args(), f"--qualification-result={result}"]


# -- idle, active, xdist -------------------------------------------------------------


def bench_idle(work: Path, env: dict[str, str], plan: Plan) -> Figure:
    """A plain suite, the plugin installed but idle, against the plugin disabled."""
    run = Pytest(write_suite(work / "idle", 5, 100, "pass"), env)
    runs = alternate(
        {"plugin idle": run, "plugin disabled": lambda: run(*DISABLED)},
        plan,
        plan.idle_rounds,
    )
    idle, disabled = runs["plugin idle"], runs["plugin disabled"]
    ratio = idle.wall / disabled.wall
    return Figure(
        "idle",
        ratio,
        "wall, 500 plain tests: plugin idle / plugin disabled",
        "<= 1.05",
        ratio <= 1.05,
        comparison(idle, disabled),
    )


def bench_active(work: Path, env: dict[str, str], plan: Plan) -> Figure:
    """A qualification suite under a valid manifest, against the plugin disabled."""
    certifications = Certifications(work / "active-lab")
    run = Pytest(write_suite(work / "active", 10, 300, "pass", QUALIFICATION_MARK), env)
    runs = alternate(
        {
            "plugin active": lambda: run(*certifications.args()),
            "plugin disabled": lambda: run(*DISABLED),
        },
        plan,
        plan.rounds,
    )
    active, disabled = runs["plugin active"], runs["plugin disabled"]
    ratio = active.wall / disabled.wall
    lines = comparison(active, disabled)
    lines.extend(
        active_breakdown(
            certifications.mint(), env, active.cpu - disabled.cpu, plan.probes
        )
    )
    return Figure(
        "active",
        ratio,
        "wall, 3,000 qualification tests: plugin active / plugin disabled",
        "<= 1.05",
        ratio <= 1.05,
        lines,
    )


#: Run in a fresh interpreter: the CPU time the session pays once, before any test.
ONCE_PROBE = """
import sys, time
from pathlib import Path
import pytest
start = time.process_time()
import pytest_routerd_qual.session
from pytest_routerd_qual.preflight import Request, run_preflight
imported = time.process_time()
manifest, environment, topology, providers, root = sys.argv[1:]
verdict = run_preflight(Request(Path(manifest), environment, topology,
                                tuple(providers.split(",")), Path(root)))
assert verdict.go, verdict.reasons
print(imported - start, time.process_time() - imported)
"""


def active_breakdown(
    sample: SampleCertification, env: dict[str, str], difference: float, probes: int
) -> list[str]:
    """Split the active run's extra CPU time into imports, first preflight and the
    rest, measuring the first two in fresh interpreters."""
    command = [
        sys.executable,
        "-c",
        ONCE_PROBE,
        str(sample.manifest_path),
        sample.environment,
        sample.topology,
        ",".join(sample.providers),
        str(sample.scripts_root),
    ]
    samples = []
    for _ in range(probes):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"the import probe failed:\n{done.stderr}")
        samples.append([float(value) for value in done.stdout.split()])
    imports = median([s[0] for s in samples])
    preflight = median([s[1] for s in samples])
    rest = difference - imports - preflight
    return [
        f"breakdown of the cpu difference (imports and preflight: median of "
        f"{probes} fresh interpreters):",
        f"  import of the core (session, jsonschema, pydantic, pendulum) "
        f"{imports * 1000:5.0f} ms",
        f"  first preflight (schema compiled, manifest checked)          "
        f"{preflight * 1000:5.0f} ms",
        f"  the rest: hooks on 3,000 tests, watchdog, result written     "
        f"{rest * 1000:5.0f} ms = {rest / 3000 * 1e6:.0f} us per test",
    ]


#: Each test of the xdist figure sleeps this long: the suite is bound by its sleeps,
#: as a qualification is bound by VM boots, not by pytest's own work.
SLEEP = 0.3


def bench_xdist(work: Path, env: dict[str, str], plan: Plan) -> Figure:
    """A sleep-bound qualification suite on two workers against one process."""
    certifications = Certifications(work / "xdist-lab")
    run = Pytest(
        write_suite(work / "xdist", 4, 10, f"time.sleep({SLEEP})", QUALIFICATION_MARK),
        env,
    )

    def under_plugin(workers: str) -> Callable[[], Timing]:
        return lambda: run(*certifications.args(), "-n", workers)

    runs = alternate(
        {
            "-n 0, plugin active": under_plugin("0"),
            "-n 2, plugin active": under_plugin("2"),
            "-n 0, plugin disabled": lambda: run(*DISABLED, "-n", "0"),
            "-n 2, plugin disabled": lambda: run(*DISABLED, "-n", "2"),
        },
        plan,
        plan.xdist_rounds,
    )
    serial, parallel, bare_serial, bare_parallel = runs.values()
    speedup = serial.wall / parallel.wall
    return Figure(
        "xdist",
        speedup,
        f"wall, 40 tests sleeping {SLEEP} s, plugin active: (-n 0) / (-n 2)",
        ">= 1.6",
        speedup >= 1.6,
        [
            *(variant.line() for variant in runs.values()),
            f"without the plugin (-n 0) / (-n 2) is "
            f"{bare_serial.wall / bare_parallel.wall:.3f}; the plugin adds "
            f"{(serial.wall - bare_serial.wall) * 1000:+.0f} ms to -n 0 and "
            f"{(parallel.wall - bare_parallel.wall) * 1000:+.0f} ms to -n 2",
            f"beyond the sleep ({40 * SLEEP:.1f} s at -n 0, {20 * SLEEP:.1f} s at "
            f"-n 2), with the plugin: -n 0 {(serial.wall - 40 * SLEEP) * 1000:.0f} "
            f"ms, -n 2 {(parallel.wall - 20 * SLEEP) * 1000:.0f} ms",
        ],
    )


# -- preflight, result ---------------------------------------------------------------


def with_checks(count: int) -> Callable[[dict[str, Any]], None]:
    """A manifest edit that makes ``checks`` hold ``count`` passing entries."""

    def mutate(manifest: dict[str, Any]) -> None:
        template = manifest["checks"]
        manifest["checks"] = [
            {**template[index % len(template)], "name": f"check-{index:05d}"}
            for index in range(count)
        ]

    return mutate


def repeat(call: Callable[[], object], calls: int, budget: float) -> Runs:
    """Time up to ``calls`` calls; stop early once they took ``budget`` seconds,
    after three at least."""
    timings: list[Timing] = []
    while len(timings) < calls and (
        len(timings) < 3 or sum(t.wall for t in timings) < budget
    ):
        timings.append(timed(call))
    return Runs("", timings)


def bench_preflight(work: Path, env: dict[str, str], plan: Plan) -> Figure:
    """In-process ``run_preflight`` on manifests of 10, 1,000 and 10,000 checks."""
    medians: dict[int, float] = {}
    lines = []
    for count in (10, 1_000, 10_000):
        sample = write_sample_certification(
            work / f"preflight-{count}", mutate=with_checks(count)
        )
        request = Request(
            sample.manifest_path,
            sample.environment,
            sample.topology,
            sample.providers,
            sample.scripts_root,
        )
        first = timed(functools.partial(check_go, request))
        runs = repeat(
            functools.partial(check_go, request),
            plan.preflight_calls,
            plan.preflight_budget,
        )
        medians[count] = runs.wall
        size = sample.manifest_path.stat().st_size / 1024
        lines.append(
            f"{count:>6} checks ({size:5.0f} KiB): wall median "
            f"{runs.wall * 1000:7.1f} ms, cpu median {runs.cpu * 1000:7.1f} ms, "
            f"{len(runs.timings)} calls (first call {first.wall * 1000:.0f} ms)"
        )
    lines.append(f"1,000 checks / 10 checks: {medians[1_000] / medians[10]:.1f}")
    return Figure(
        "preflight",
        medians[10_000] / medians[1_000],
        "wall per run_preflight, 10,000 checks / 1,000 checks (linear: 10)",
        "10 checks < 10 ms, 10,000 checks < 1 s",
        medians[10] < 0.010 and medians[10_000] < 1.0,
        lines,
    )


def check_go(request: Request) -> None:
    verdict = run_preflight(request)
    if not verdict.go:
        raise BenchError(f"the preflight refused {request.manifest_path}")


def filled_book(tests: int) -> CheckBook:
    """A book of ``tests`` qualification checks, one call report each, 1% failed."""
    book = CheckBook()
    scope = Scope("qualification_check", "readiness")
    failed = Finding(Classification.PRODUCT_FAILURE, RULE_PRODUCT)
    for index in range(tests):
        nodeid = f"tests/test_suite_{index // 500}.py::test_check_{index}"
        book.collected(nodeid, scope)
        fails = index % 100 == 99
        report = PhaseReport(
            nodeid,
            "call",
            "failed" if fails else "passed",
            0.0123,
            failed if fails else NO_FINDING,
            "AssertionError: route 10.0.0.0/24 is missing" if fails else None,
        )
        book.observe(report, scope)
    return book


@dataclass
class ResultRun:
    """The steps from phase reports to the written result, each timed on its own."""

    path: Path
    tests: int
    book: CheckBook = field(default_factory=CheckBook)
    checks: list[dict[str, Any]] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def observe(self) -> None:
        self.book = filled_book(self.tests)

    def entries(self) -> None:
        self.checks = self.book.entries()

    def build(self) -> None:
        self.document = build_result(
            RunIdentity("cert-lab-sim", "run-lab-sim", "1.4.0", "0" * 64),
            classification=self.book.classification(),
            started_at=pendulum.now("UTC"),
            finished_at=pendulum.now("UTC"),
            driver_exit=1,
            checks=self.checks,
        )

    def write(self) -> None:
        write_atomic(self.path, self.document)

    def timings(self) -> list[Timing]:
        return [
            timed(step) for step in (self.observe, self.entries, self.build, self.write)
        ]


def bench_result(work: Path, env: dict[str, str], plan: Plan) -> Figure:
    """Building and writing the result document of 20,000 tests, in process."""
    path = work / "result" / "result.json"
    ResultRun(path, 20_000).timings()
    steps = [ResultRun(path, 20_000).timings() for _ in range(plan.result_runs)]
    total = Runs(
        "total",
        [Timing(sum(t.wall for t in s), sum(t.cpu for t in s)) for s in steps],
    )
    names = ("observe (20,000 reports)", "entries()", "build_result", "write_atomic")
    lines = [total.line()]
    lines.extend(
        Runs(f"  {name}", [s[i] for s in steps]).line() for i, name in enumerate(names)
    )
    lines.append(f"document size: {path.stat().st_size / 1024 / 1024:.1f} MiB")
    return Figure(
        "result",
        total.wall / 0.5,
        "wall, 20,000 tests observed, built and written / 0.5 s budget",
        "< 1",
        total.wall < 0.5,
        lines,
    )


BENCHES: dict[str, Callable[[Path, dict[str, str], Plan], Figure]] = {
    "idle": bench_idle,
    "active": bench_active,
    "xdist": bench_xdist,
    "preflight": bench_preflight,
    "result": bench_result,
}


# -- the command ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="Fewer repetitions (about a minute)"
    )
    parser.add_argument(
        "--only",
        choices=FIGURES,
        action="append",
        help="Run only this figure (repeat the option for several)",
    )
    return parser.parse_args(argv)


def describe_machine() -> str:
    return (
        f"python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    plan = QUICK if options.quick else FULL
    print(describe_machine(), flush=True)
    started = time.perf_counter()
    figures = []
    with tempfile.TemporaryDirectory(prefix="routerd-qual-bench-") as temporary:
        work = Path(temporary)
        env = subprocess_env(work / "pycache")
        for name in options.only or FIGURES:
            figure = BENCHES[name](work, env, plan)
            print(f"\n{figure.headline()}", flush=True)
            for line in figure.lines:
                print(f"    {line}", flush=True)
            figures.append(figure)
    elapsed = time.perf_counter() - started
    print(
        f"\nsummary ({'quick' if options.quick else 'full'} run, {elapsed:.0f} s, "
        f"load average now {os.getloadavg()[0]:.2f}):"
    )
    for figure in figures:
        print(f"  {figure.headline()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
