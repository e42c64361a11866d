"""The pages under docs/ are tested, so that they cannot drift from the code.

Conventions for every page of docs/ (pages added later too):

Each fenced code block names its language, and each language is exercised:

- ``python``: executed. A block with ``>>>`` lines is run as a doctest instead
  (ELLIPSIS on, module name ``__main__``).
- ``ini``: written as the pytest.ini of the sample directory (below) and run as a
  qualification, ``pytest --certification-manifest=certification.json``; it must
  exit 0. The result and evidence directory it names must exist afterwards, and
  reference.md must name every evidence file.
- ``sh``: every line is a command. ``console``: every line starting with ``$ `` is
  a command, and the lines after it, up to the next command, must appear in that
  order in what it printed; ``...`` stands for any text, and a line of only
  ``...`` marks skipped lines. A command starts with ``pytest``,
  ``python -m pytest`` or ``routerd-qual``, perhaps after ``NAME=value``
  assignments. It ends with ``# exit N``, the exit code it must have, and it may
  continue over lines that end in a backslash. It runs under bash with the
  installed tools first on PATH, COLUMNS=80 and a HOME of its own. Hypothesis's
  pytest plugin, a test dependency of this checkout that costs each run a second,
  is disabled through PYTEST_ADDOPTS.
- ``yaml``: a CI recipe for GitHub Actions (it has ``runs-on:``) or GitLab CI (it
  has ``script:``), read line by line: no YAML library. Its pytest and
  routerd-qual commands may use only existing options. Its ``case`` branches
  cover exits 1, 10 and 11. Its artifacts, always kept, hold the result, the
  JUnit report and the evidence directory. It only appends to
  ``$GITHUB_STEP_SUMMARY``. Then the block scalar that runs pytest is run with
  bash, with ``ROUTERD_CERTIFICATION_MANIFEST=certification.json``: GitHub's on a
  lab told to break routerd (exit 1), GitLab's on one told to break its
  substrate (exit 11).

Every block runs in a fresh sample directory, a copy of the example suite
(conftest_examples/) that also holds:

- ``certification.json``: a passing certification of its lab, valid for an hour;
- ``old-certification.json``: a certification of the same lab, expired an hour ago;
- ``bin/cleanup-run``, ``bin/inventory-run``: cleanup and inventory commands that
  succeed;
- ``docs/releases/manifests/release-environment-certification.schema.json``;
- ``ci-artifacts/``, when the block names it: what the GitHub Actions recipe
  uploads after a run on a lab that lost a route.

The commands of one block run in order, in the same directory.

Outside the blocks, every ``--option`` in the docs must exist, every setting
must be in reference.md, and every exit code in index.md and reference.md.
Every cited ``tests/test_x.py::test_y``, every refusal rule such as
``[expired]``, and every ``ROUTERD_*`` variable must exist in the code.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import cast

import pytest

from pytest_routerd_qual import Classification, QualificationExit
from pytest_routerd_qual.classification import OUTCOMES, CheckRecord, Finding, Scope
from pytest_routerd_qual.demo import example_suite
from pytest_routerd_qual.exitcodes import exit_code_for
from pytest_routerd_qual.lifecycle import (
    DEFAULT_CLEANUP_TIMEOUT,
    EvidenceFile,
    lifecycle_settings_from_config,
)
from pytest_routerd_qual.observe import junit_properties
from pytest_routerd_qual.options import SETTINGS, add_options
from pytest_routerd_qual.session import DEFAULT_RESULT
from pytest_routerd_qual.testing import write_sample_certification

CHECKOUT = Path(__file__).resolve().parent.parent
DOCS = CHECKOUT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SOURCES = [
    *(CHECKOUT / "pytest_routerd_qual").glob("*.py"),
    *(CHECKOUT / "conftest_examples").glob("*.py"),
]
SCHEMA = "docs/releases/manifests/release-environment-certification.schema.json"
RUN_ID = "<runId>"
TIMEOUT = 300
#: Environment variables of the outer session that must not reach a command.
LEAKS = re.compile(r"ROUTERD_|PYTEST_|GITHUB_|COLUMNS$|FORCE_COLOR$|NO_COLOR$")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
HELP_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
EXIT = re.compile(r"^(?P<command>.*?)\s+#\s*exit\s+(?P<code>\d+)\s*$")
ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
CITATION = re.compile(r"tests/(test_\w+\.py)::(test_\w+)")
RULE = re.compile(r"`\[([a-z]+(?:-[a-z]+)*)\]|^\s*- \[([a-z]+(?:-[a-z]+)*)\]", re.M)
VARIABLE = re.compile(r"\b(?:ROUTERD_[A-Z0-9_]+|GITHUB_STEP_SUMMARY)\b")
CONTROL = {"||", "&&", ";", "|", ";;"}
#: Well-known spellings that pytest accepts but its help leaves out (it lists only
#: the longer of two aliases).
PYTEST_ALIASES = {"--junitxml"}
LANGUAGES = ("python", "ini", "sh", "console", "yaml")
#: What the commands' pytest leaves out: a test dependency of this checkout that
#: imports Hypothesis at the end of each session.
ADDOPTS = "-p no:hypothesispytest"
CLEANUP_SCRIPT = '#!/bin/sh\n# Stands in for the lab\'s {role}.\necho "{role} $*"\n'


# ------------------------------------------------------------------------ pages


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: Path) -> Iterator[Block]:
    """The fenced code blocks of ``page``, with the line of their opening fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start, language, inside = 0, "", False
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith("```"):
            body.append(line)
        elif inside:
            yield Block(page.name, start, language, "\n".join(body) + "\n")
            inside = False
        else:
            start, language, body, inside = number, line[3:].strip(), [], True
    assert not inside, f"{page.name}:{start}: the code block is never closed"


BLOCKS = [block for page in PAGES for block in read_blocks(page)]


def blocks_in(*languages: str) -> list[Block]:
    return [block for block in BLOCKS if block.language in languages]


def page_text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


# --------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    """A documented command, the exit code it must end with, and what it prints."""

    text: str
    exit: int
    expected: tuple[str, ...] = ()

    @classmethod
    def parse(cls, line: str, expected: Sequence[str] = ()) -> Command:
        match = EXIT.match(line)
        if match is None:
            raise AssertionError(f"no '# exit N' after the command: {line}")
        return cls(match["command"], int(match["code"]), tuple(expected))


def logical_lines(text: str) -> list[str]:
    """The lines of ``text``, those that end with a backslash joined to the next."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return joined


def shell_commands(block: Block) -> list[Command]:
    """The commands of a ``sh`` or ``console`` block, in order."""
    commands: list[tuple[str, list[str]]] = []
    for line in logical_lines(block.text):
        if block.language == "sh" and line.strip() and not line.startswith("#"):
            commands.append((line, []))
        elif block.language == "console" and line.startswith("$ "):
            commands.append((line[2:], []))
        elif block.language == "console" and commands:
            commands[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"{block}: output before any command: {line}")
    return [Command.parse(line, expected) for line, expected in commands]


def invocation(tokens: Sequence[str]) -> tuple[str, list[str]] | None:
    """The tool a command runs (``pytest``, ``routerd-qual CMD``) and its
    arguments, or ``None`` for any other command."""
    words = list(tokens)
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)
    for index, word in enumerate(words):
        if word in CONTROL:
            words = words[:index]
            break
    if words[:3] == ["python", "-m", "pytest"]:
        return "pytest", words[3:]
    if words[:1] == ["pytest"]:
        return "pytest", words[1:]
    if words[:1] == ["routerd-qual"] and len(words) > 1:
        return f"routerd-qual {words[1]}", words[2:]
    return None


def flags_of(tool: str, arguments: Sequence[str]) -> Iterator[tuple[str, str]]:
    """Each ``(tool, flag)`` used; after ``--``, the demo's arguments go to pytest."""
    for argument in arguments:
        if argument == "--":
            tool = "pytest"
        elif re.fullmatch(r"-{1,2}[A-Za-z][\w-]*(=.*)?", argument):
            yield tool, argument.split("=", 1)[0]


def command_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without the outer session's leaks."""
    environment = {k: v for k, v in os.environ.items() if not LEAKS.match(k)}
    tools = str(Path(sys.executable).parent)
    environment["PATH"] = tools + os.pathsep + environment.get("PATH", "")
    environment.update(COLUMNS="80", PY_COLORS="0", PYTEST_ADDOPTS=ADDOPTS)
    environment["HOME"] = str(home)
    environment.update(extra)
    return environment


def run_shell(
    script: str, directory: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash in ``directory``, as a CI step or a user would."""
    home = directory.parent / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=directory,
        env=command_environment(home, **extra),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def as_pattern(line: str) -> str:
    """A console output line as a regular expression; ``...`` is any text."""
    return ".*".join(re.escape(part) for part in line.rstrip().split("...")) + "$"


# ------------------------------------------------------------------- the sample


def mint(directory: Path, name: str, issued: datetime) -> None:
    """A certification of the example lab, with IDs no other one shares."""
    tag = f"{issued:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"
    write_sample_certification(
        directory,
        issued_at=issued,
        manifest_name=name,
        manifest_id=f"cert-lab-sim-{tag}",
        run_id=f"run-lab-sim-{tag}",
    )


def make_sample(directory: Path) -> Path:
    """The sample directory of the module docstring, without ``ci-artifacts/``."""
    shutil.copytree(
        example_suite(),
        directory,
        ignore=shutil.ignore_patterns("__pycache__", ".*"),
    )
    now = datetime.now(timezone.utc).replace(microsecond=0)
    mint(directory, "certification.json", now)
    mint(directory, "old-certification.json", now - timedelta(hours=2))
    for role in ("cleanup", "inventory"):
        command = directory / "bin" / f"{role}-run"
        command.parent.mkdir(exist_ok=True)
        command.write_text(CLEANUP_SCRIPT.format(role=role))
        command.chmod(command.stat().st_mode | stat.S_IXUSR)
    schema = directory / SCHEMA
    schema.parent.mkdir(parents=True)
    shutil.copyfile(CHECKOUT / SCHEMA, schema)
    return directory


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return make_sample(tmp_path / "suite")


def manifest_of(directory: Path, name: str = "certification.json") -> dict[str, str]:
    manifest = json.loads((directory / name).read_text())
    return {"manifestId": manifest["manifestId"], "runId": manifest["run"]["runId"]}


# ---------------------------------------------------------------------- helps


BENCH = Path(__file__).parent.parent / "benchmarks" / "bench.py"


def help_flags(text: str) -> set[str]:
    return set(HELP_FLAG.findall(text))


@pytest.fixture(scope="session")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The flags each tool accepts, read from its ``--help``."""
    empty = tmp_path_factory.mktemp("help")

    def read(*argv: str) -> str:
        done = subprocess.run(
            argv,
            cwd=empty,
            env=command_environment(empty, COLUMNS="1000"),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        return done.stdout

    pytest_help = read(sys.executable, "-m", "pytest", "--help")
    found = {"pytest": help_flags(pytest_help) | PYTEST_ALIASES}
    main = read("routerd-qual", "--help")
    found["routerd-qual"] = help_flags(main)
    for command in re.findall(r"^    ([a-z]+)\b", main, re.M):
        found[f"routerd-qual {command}"] = help_flags(
            read("routerd-qual", command, "--help")
        )
    found["benchmarks/bench.py"] = help_flags(
        read(sys.executable, str(BENCH), "--help")
    )
    return found


def assert_flags_exist(
    helps: dict[str, set[str]], tool: str, arguments: Sequence[str]
) -> None:
    assert tool in helps, f"{tool} is not a command of the plugin"
    for used_by, flag in flags_of(tool, arguments):
        assert flag in helps[used_by], f"{used_by} has no option {flag}"


# ----------------------------------------------------------------- CI recipes


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def nested(lines: Sequence[str], index: int) -> list[str]:
    """The lines after ``lines[index]`` that are indented deeper than it."""
    body: list[str] = []
    for line in lines[index + 1 :]:
        if line.strip() and indent(line) <= indent(lines[index]):
            break
        body.append(line)
    return body


@dataclass(frozen=True)
class Recipe:
    """A CI recipe of the docs, read line by line."""

    block: Block

    @property
    def lines(self) -> list[str]:
        return self.block.text.splitlines()

    @property
    def github(self) -> bool:
        return "runs-on:" in self.block.text

    def scripts(self) -> list[str]:
        """The block scalars (``run: |``, ``- |``), dedented."""
        return [
            textwrap.dedent("\n".join(nested(self.lines, index)))
            for index, line in enumerate(self.lines)
            if line.rstrip().endswith(("run: |", "- |"))
        ]

    def script(self) -> str:
        [script] = [s for s in self.scripts() if self.commands_in(s)]
        return script

    def commands_in(self, text: str) -> list[tuple[str, list[str]]]:
        found = []
        for line in logical_lines(text):
            shell = re.sub(r"^\s*(?:-\s+)?(?:run:\s+)?", "", line)
            try:
                tokens = shlex.split(shell, comments=True)
            except ValueError:
                continue
            command = invocation(tokens)
            if command is not None:
                found.append(command)
        return found

    def pytest_arguments(self) -> dict[str, str]:
        """The ``--name=value`` arguments of the recipe's one pytest command."""
        [arguments] = [a for t, a in self.commands_in(self.block.text) if t == "pytest"]
        pairs = (argument.split("=", 1) for argument in arguments if "=" in argument)
        return {pair[0]: pair[1] for pair in pairs}

    def exit_branches(self) -> dict[str, str]:
        """The ``case`` arms of the script: pattern to the rest of its line."""
        return dict(re.findall(r"^\s*([0-9*]+)\)\s*(.*)$", self.script(), re.M))

    def artifact_paths(self) -> list[str]:
        section = self.artifact_section()
        paths = [line.split(":", 1)[1].strip() for line in section if "path:" in line]
        at = next((i for i, line in enumerate(section) if "paths:" in line), None)
        if at is not None:
            paths += [line.strip()[2:] for line in nested(section, at)]
        return paths

    def artifact_section(self) -> list[str]:
        """The upload step (GitHub) or the ``artifacts:`` key (GitLab)."""
        lines = self.lines
        if self.github:
            at = next(i for i, x in enumerate(lines) if "actions/upload-artifact@" in x)
            step = max(
                i
                for i in range(at + 1)
                if lines[i].lstrip().startswith("- ")
                and indent(lines[i]) < indent(lines[at])
            )
            return [lines[step], *nested(lines, step)]
        at = next(i for i, x in enumerate(lines) if x.strip() == "artifacts:")
        return nested(lines, at)


def under(path: str, directory: str) -> bool:
    inner, outer = PurePosixPath(path), PurePosixPath(directory.rstrip("/"))
    return inner == outer or outer in inner.parents


@dataclass(frozen=True)
class RecipeRun:
    """A recipe's pytest script, run in a sample directory."""

    directory: Path
    done: subprocess.CompletedProcess[str]
    summary: str
    outputs: str


def run_recipe(recipe: Recipe, directory: Path, lab_break: str) -> RecipeRun:
    summary, outputs = directory.parent / "summary.md", directory.parent / "outputs"
    extra = {"ROUTERD_CERTIFICATION_MANIFEST": "certification.json"}
    if recipe.github:
        summary.write_text("")
        outputs.write_text("")
        extra.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(outputs))
    done = run_shell(recipe.script(), directory, ROUTERD_LAB_BREAK=lab_break, **extra)
    return RecipeRun(directory, done, text_of(summary), text_of(outputs))


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


RECIPES = [Recipe(block) for block in blocks_in("yaml")]
GITHUB = [recipe for recipe in RECIPES if recipe.github]


@pytest.fixture(scope="session")
def github_run(tmp_path_factory: pytest.TempPathFactory) -> RecipeRun:
    """The GitHub Actions recipe, run on a lab that lost a route."""
    directory = make_sample(tmp_path_factory.mktemp("github") / "suite")
    return run_recipe(GITHUB[0], directory, "product")


# ------------------------------------------------------------------- the blocks


def test_every_code_block_names_a_language_that_is_tested() -> None:
    assert BLOCKS, "the docs have no code block"
    untested = [
        f"{block} ({block.language or 'no language'})"
        for block in BLOCKS
        if block.language not in LANGUAGES
    ]
    assert untested == []
    # A fence indented (in a list, say) would escape the tests: none may be.
    for page in PAGES:
        indented = re.findall(r"^[ \t]+```.*$", page.read_text(), re.M)
        assert indented == [], page.name


@pytest.mark.parametrize("block", blocks_in("python"), ids=str)
def test_python_block_runs(
    block: Block,
    sample: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if "ci-artifacts/" in block.text:
        run: RecipeRun = request.getfixturevalue("github_run")
        shutil.copytree(run.directory / "results", sample / "ci-artifacts")
    monkeypatch.chdir(sample)
    if ">>>" not in block.text:
        exec(compile(block.text, str(block), "exec"), {"__name__": "docs_block"})
        return
    test = doctest.DocTestParser().get_doctest(
        block.text, {"__name__": "__main__"}, str(block), block.page, block.line
    )
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("block", blocks_in("ini"), ids=str)
def test_ini_block_is_accepted_by_a_qualification_run(
    block: Block, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if LEAKS.match(name)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PYTEST_ADDOPTS", ADDOPTS)
    directory = make_sample(pytester.path / "suite")
    (directory / "pytest.ini").write_text(block.text)
    monkeypatch.chdir(directory)
    result = pytester.runpytest_subprocess(
        "--certification-manifest=certification.json", timeout=TIMEOUT
    )
    assert result.ret == QualificationExit.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["routerd-qual: certification * may start"])
    keys = dict(re.findall(r"^(\w+)\s*=\s*(.+)$", block.text, re.M))
    assert_evidence_documented(directory, keys.get("qualification_evidence_dir"))
    if "qualification_result" in keys:
        assert (directory / keys["qualification_result"]).is_file()


def assert_evidence_documented(directory: Path, evidence: str | None) -> None:
    run_id = manifest_of(directory)["runId"]
    folder = directory / (evidence or f".routerd-qual/evidence/{run_id}")
    assert (folder / EvidenceFile.MANIFEST).is_file()
    reference = page_text("reference.md")
    for path in folder.iterdir():
        assert f"`{path.name.replace(run_id, RUN_ID)}`" in reference


@pytest.mark.parametrize("block", blocks_in("sh", "console"), ids=str)
def test_shell_block_commands_exit_as_documented(
    block: Block, sample: Path, helps: dict[str, set[str]]
) -> None:
    commands = shell_commands(block)
    assert commands, f"{block} has no command"
    for command in commands:
        parsed = invocation(shlex.split(command.text))
        assert parsed is not None, f"not a pytest or routerd-qual command: {command}"
        assert_flags_exist(helps, *parsed)
    for command in commands:
        done = run_shell(command.text, sample)
        printed = done.stdout.splitlines() + done.stderr.splitlines()
        assert done.returncode == command.exit, "\n".join([command.text, *printed])
        patterns = [as_pattern(x) for x in command.expected if x.strip() != "..."]
        pytest.LineMatcher(printed).re_match_lines(patterns)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda recipe: str(recipe.block))
def test_ci_recipe_is_sound(recipe: Recipe, helps: dict[str, set[str]]) -> None:
    for tool, used in recipe.commands_in(recipe.block.text):
        assert_flags_exist(helps, tool, used)
    arguments = recipe.pytest_arguments()
    assert "ROUTERD_CERTIFICATION_MANIFEST:" in recipe.block.text or (
        "--certification-manifest" in arguments
    )
    branches = recipe.exit_branches()
    assert {"1", "10", "11", "*"} <= set(branches)
    assert {int(b) for b in branches if b != "*"} <= {int(c) for c in QualificationExit}
    assert 'exit "$code"' in recipe.script()
    kept = recipe.artifact_paths()
    for option in (
        "--qualification-result",
        "--junitxml",
        "--qualification-evidence-dir",
    ):
        assert any(under(arguments[option], path) for path in kept), option
    if recipe.github:
        assert_github_keeps_evidence(recipe, kept)
    else:
        assert "GITHUB_STEP_SUMMARY" not in recipe.block.text
        section = [line.strip() for line in recipe.artifact_section()]
        assert "when: always" in section
        assert f"junit: {arguments['--junitxml']}" in section


def assert_github_keeps_evidence(recipe: Recipe, kept: Sequence[str]) -> None:
    assert any("if: always()" in line for line in recipe.artifact_section())
    # upload-artifact leaves hidden files out: the evidence must not be hidden.
    assert not [p for p in kept if any(x.startswith(".") for x in p.split("/"))]
    for line in recipe.lines:
        if "GITHUB_STEP_SUMMARY" in line:
            # A truncating redirect would erase the plugin's own summary.
            assert re.search(r'>>\s*"?\$GITHUB_STEP_SUMMARY', line), line


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda recipe: str(recipe.block))
def test_ci_recipe_runs_and_branches_on_the_exit_code(
    recipe: Recipe, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if recipe.github and recipe is GITHUB[0]:
        run: RecipeRun = request.getfixturevalue("github_run")
    else:
        lab_break = "product" if recipe.github else "substrate"
        run = run_recipe(recipe, make_sample(tmp_path / "suite"), lab_break)
    code = QualificationExit.PRODUCT_FAILURE if recipe.github else 11
    assert run.done.returncode == code, run.done.stdout + run.done.stderr
    results = run.directory / "results"
    for kept in ("qualification-result.json", "junit.xml", "evidence"):
        assert (results / kept).exists(), kept
    if recipe.github:
        assert run.summary.startswith(
            "### routerd qualification: product_failure (exit 1)\n"
        )
        assert run.summary.splitlines()[-1].startswith("**Next:** ")
        assert run.outputs == "exit=1\n"
    else:
        message = recipe.exit_branches()["11"].removeprefix("echo ").split('"')[1]
        assert message in run.done.stdout
        ledger = run.directory.parent / "home" / ".routerd-qual" / "ledger.jsonl"
        assert manifest_of(run.directory)["manifestId"] in ledger.read_text()


# -------------------------------------------------------- the rest of the text


def test_every_option_named_in_the_docs_exists(helps: dict[str, set[str]]) -> None:
    known = set().union(*helps.values())
    for page in PAGES:
        unknown = sorted(set(OPTION.findall(page.read_text())) - known)
        assert unknown == [], page.name


class _Recorder:
    """Stands in for pytest's parser to list what :func:`add_options` declares."""

    def __init__(self) -> None:
        self.options: list[str] = []
        self.ini: dict[str, object] = {}

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *names: str, **attributes: object) -> None:
        self.options.extend(names)

    def addini(
        self, name: str, help: str, type: str | None = None, default: object = None
    ) -> None:
        self.ini[name] = default


def declared() -> _Recorder:
    recorder = _Recorder()
    add_options(cast(pytest.Parser, recorder))
    return recorder


def row_of(text: str, *cells: str) -> str:
    """The one table row of ``text`` that holds every one of ``cells``."""
    rows = [row for row in table_rows(text) if all(cell in row for cell in cells)]
    assert len(rows) == 1, f"{len(rows)} rows hold {cells}"
    return rows[0]


def test_every_setting_is_in_the_reference_with_its_ini_key_and_variable() -> None:
    reference = page_text("reference.md")
    assert [s.option for s in SETTINGS] == declared().options
    for setting in SETTINGS:
        row = row_of(reference, f"`{setting.option}=", f"`{setting.ini}`")
        if setting.env:
            assert f"`{setting.env}`" in row
        else:
            assert "ROUTERD_" not in row, row


def test_ini_only_keys_are_in_the_reference_with_their_defaults() -> None:
    reference = page_text("reference.md")
    settings = {setting.ini for setting in SETTINGS}
    extra = {k: v for k, v in declared().ini.items() if k not in settings}
    assert extra
    for key, default in extra.items():
        row = row_of(reference, f"| `{key}` |")
        shown = "empty" if default == [] else f"`{str(default).lower()}`"
        assert shown in row, row


def test_the_defaults_in_the_reference_are_the_code_defaults(
    pytester: pytest.Pytester,
) -> None:
    config = pytester.parseconfig()
    settings = lifecycle_settings_from_config(config)
    root = config.rootpath
    reference = page_text("reference.md")
    for option, default in (
        ("--qualification-result", DEFAULT_RESULT),
        ("--qualification-ledger", settings.ledger_path.relative_to(root)),
        ("--qualification-evidence-dir", settings.evidence_dir_for(RUN_ID)),
    ):
        relative = default.relative_to(root) if default.is_absolute() else default
        assert f"`{relative.as_posix()}` under the rootdir" in row_of(
            reference, f"`{option}="
        )
    minutes = f"{DEFAULT_CLEANUP_TIMEOUT // 60}m"
    assert minutes in row_of(reference, "`--qualification-cleanup-timeout=")


@pytest.mark.parametrize("page", ["index.md", "reference.md"])
def test_exit_code_table_lists_every_code_with_its_name_and_class(page: str) -> None:
    rows = {
        int(row.split("|")[1]): row
        for row in table_rows(page_text(page))
        if row.split("|")[1].strip().isdigit()
    }
    assert sorted(rows) == sorted(int(code) for code in QualificationExit)
    classes = {exit_code_for(c): c for c in Classification}
    for code in QualificationExit:
        assert f"`{code.name}`" in rows[code], rows[code]
        if code in classes:
            assert f"`{classes[code].value}`" in rows[code], rows[code]


def test_every_cited_test_exists() -> None:
    cited = [m for page in PAGES for m in CITATION.findall(page.read_text())]
    assert len(CITATION.findall(page_text("policy.md"))) >= 20
    for file, name in cited:
        path = CHECKOUT / "tests" / file
        assert path.is_file(), file
        assert re.search(rf"^def {name}\(", path.read_text(), re.M), f"{file}::{name}"


def test_every_refusal_rule_named_in_the_docs_exists() -> None:
    source = "\n".join(path.read_text() for path in SOURCES)
    for page in PAGES:
        for match in RULE.findall(page.read_text()):
            rule = match[0] or match[1]
            assert f'"{rule}"' in source, f"{page.name}: [{rule}]"


def test_every_environment_variable_named_in_the_docs_exists() -> None:
    source = "\n".join(path.read_text() for path in SOURCES)
    for page in PAGES:
        for name in set(VARIABLE.findall(page.read_text())):
            assert name in source, f"{page.name}: {name}"


def test_the_reference_names_every_file_key_and_property_the_plugin_writes() -> None:
    reference = page_text("reference.md")
    names = [v for k, v in vars(EvidenceFile).items() if k.isupper()]
    names += [EvidenceFile.cleanup_claim(RUN_ID), EvidenceFile.cleanup_exits(RUN_ID)]
    names += list(CheckRecord("nodeid").to_json())
    names += list(OUTCOMES)
    finding = Finding(Classification.INFRA_FAILURE, "rule", "qga")
    names += [name for name, _ in junit_properties(Scope("substrate"), finding)]
    assert [name for name in names if f"`{name}`" not in reference] == []


def test_the_reference_documents_every_command_and_its_options(
    helps: dict[str, set[str]],
) -> None:
    reference = page_text("reference.md")
    for tool, flags in helps.items():
        if not tool.startswith("routerd-qual"):
            continue  # pytest's own options, and the benchmark's (performance.md)
        assert f"`{tool}" in reference, tool
        options = {flag for flag in flags if flag.startswith("--")} - {"--help"}
        assert sorted(options - set(OPTION.findall(reference))) == [], tool
