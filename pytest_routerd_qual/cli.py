"""``routerd-qual``: the preflight and the schema check from a shell.

``routerd-qual preflight`` takes routerd's own preflight flags unchanged and runs the
same gate as the pytest plugin; ``routerd-qual validate`` checks a manifest against
the schema alone. Exit codes: 0 go (or valid), 10 no-go (or invalid), 2 usage error.
``routerd-qual demo`` runs the example qualification suite on a simulated lab and
exits with that pytest run's code (see :mod:`.demo`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .exitcodes import QualificationExit

if TYPE_CHECKING:
    from .preflight import Rule

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="routerd-qual",
        description="routerd release qualification: certification preflight, "
        "schema check and demo.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    preflight = commands.add_parser(
        "preflight",
        help="decide whether qualification may start (0 go, 10 no-go)",
        description="Run the certification preflight for a requested qualification "
        "run. Prints one line per reason and exits 0 for go, 10 for no-go.",
    )
    preflight.add_argument("--certification", required=True, metavar="FILE")
    preflight.add_argument("--environment", required=True, metavar="NAME")
    preflight.add_argument("--topology", required=True, metavar="NAME")
    preflight.add_argument(
        "--providers", required=True, metavar="LIST", help="comma-separated"
    )
    preflight.add_argument("--release", metavar="VERSION_OR_COMMIT")
    preflight.add_argument("--labs-commit", metavar="SHA")
    preflight.add_argument(
        "--scripts-root",
        metavar="DIR",
        default=".",
        help="directory the artifact and script paths are relative to (default: .)",
    )
    preflight.add_argument("--schema", metavar="FILE", help="JSON Schema to use")
    preflight.add_argument(
        "--ledger",
        metavar="FILE",
        help="ledger of spent manifests, as the plugin keeps it "
        "(default: .routerd-qual/ledger.jsonl under the scripts root)",
    )
    preflight.add_argument(
        "--json", action="store_true", help="print the verdict as JSON"
    )
    validate = commands.add_parser(
        "validate",
        help="check a manifest against the schema alone (0 valid, 10 invalid)",
    )
    validate.add_argument("file", metavar="FILE")
    validate.add_argument("--schema", metavar="FILE", help="JSON Schema to use")
    _add_demo(commands)
    return parser


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
    from .demo import BREAKS

    demo = commands.add_parser(
        "demo",
        help="run the example qualification suite on a simulated lab",
        description="Mint a sample certification, run the example qualification "
        "suite under the plugin on a simulated lab, and exit with its code: 0 "
        "healthy, 11 with --break substrate, 1 with --break product, 10 with "
        "--break certification. Arguments after -- go to pytest (e.g. -- -n 2).",
    )
    demo.add_argument(
        "--break",
        dest="break_",
        choices=BREAKS,
        help="break the lab's substrate, routerd, or the certification (expired)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the temporary directory"
    )
    demo.add_argument(
        "--workdir",
        metavar="DIR",
        help="run in DIR (created if needed, kept) instead of a temporary directory",
    )
    demo.add_argument(
        "pytest_args",
        nargs="*",
        metavar="-- PYTEST_ARGS",
        help="arguments for the demo's pytest run",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``routerd-qual`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "preflight":
        return _preflight(args)
    if args.command == "demo":
        return _demo(args)
    return _validate(args)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(
        args.break_,
        Path(args.workdir) if args.workdir else None,
        args.keep,
        args.pytest_args,
    )


def _preflight(args: argparse.Namespace) -> int:
    from .preflight import (
        COMMAND_FLAGS,
        Request,
        go_line,
        refusal_lines,
        run_preflight,
    )

    request = Request(
        manifest_path=Path(args.certification),
        environment=args.environment.strip() or None,
        topology=args.topology.strip() or None,
        providers=tuple(p.strip() for p in args.providers.split(",") if p.strip()),
        scripts_root=Path(args.scripts_root),
        release=args.release,
        labs_commit=args.labs_commit,
        schema_path=Path(args.schema) if args.schema else None,
        flags=COMMAND_FLAGS,
    )
    verdict = run_preflight(request, extra_rules=_session_rules(args))
    if args.json:
        print(
            json.dumps(
                {
                    "go": verdict.go,
                    "manifestId": verdict.manifest_id,
                    "runId": verdict.run_id,
                    "manifestSha256": verdict.sha256,
                    "checkedAt": verdict.checked_at.isoformat(),
                    "reasons": [
                        {"rule": r.rule, "message": r.message} for r in verdict.reasons
                    ],
                },
                indent=2,
            )
        )
    elif verdict.go:
        print(f"go: {go_line(verdict)}")
    else:
        print("no-go: " + "\n".join(refusal_lines(verdict)))
    return QualificationExit.OK if verdict.go else QualificationExit.PREFLIGHT_FAILURE


def _session_rules(args: argparse.Namespace) -> list[Rule]:
    """The lifecycle rules a pytest session adds, with the session's defaults, so
    that the command and the plugin reach the same verdict."""
    from .lifecycle import LifecycleSettings, lifecycle_preflight_rules

    root = Path(args.scripts_root).absolute()
    ledger = Path(args.ledger) if args.ledger else root / ".routerd-qual/ledger.jsonl"
    return lifecycle_preflight_rules(
        LifecycleSettings(ledger_path=ledger, rootdir=root)
    )


def _validate(args: argparse.Namespace) -> int:
    from .documents import DocumentError, read_json_document
    from .schema import SchemaError, certification_validator, schema_errors

    try:
        validator = certification_validator(Path(args.schema) if args.schema else None)
        document = read_json_document(Path(args.file), "the manifest")
    except (DocumentError, SchemaError) as exc:
        print(f"invalid: {exc}")
        return QualificationExit.PREFLIGHT_FAILURE
    errors = schema_errors(validator, document.content)
    for error in errors:
        print(f"invalid: {error}")
    if errors:
        return QualificationExit.PREFLIGHT_FAILURE
    print(f"valid: {args.file} (sha256 {document.sha256})")
    return QualificationExit.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
