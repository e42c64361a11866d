"""No repair during qualification: the ``repair_action`` decorator of lab SDKs.

A lab SDK marks the functions that repair the substrate (regenerate a config disk,
restart a guest agent, patch a route) with :func:`repair_action`. During a
qualification session such a call does not run: it raises a
:class:`~pytest_routerd_qual.defects.SubstrateDefect`, which stops the run as an
infra failure, because a repaired substrate is no longer the one that was certified.
Outside a qualification the function runs normally, so certification tooling uses
the same SDK.

Whether a qualification is active is a process-wide switch: lab SDK code has no
pytest config to look at. The session turns it on with :func:`activate` (or
:func:`qualification_active`), which also exports ``ROUTERD_QUALIFICATION_RUN_ID`` so
that helper subprocesses and pytest-xdist workers, which inherit the environment,
refuse repairs too. This module imports the standard library only: lab SDKs import
it.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from .defects import SubstrateDefect

#: Set to the run ID while a qualification runs; inherited by child processes.
RUN_ID_ENV = "ROUTERD_QUALIFICATION_RUN_ID"

P = ParamSpec("P")
R = TypeVar("R")


class _Switch:
    """The process-wide qualification switch, and the environment it replaced."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.run_id: str | None = None
        self.saved_env: str | None = None


_SWITCH = _Switch()


def activate(run_id: str) -> None:
    """Refuse repairs in this process and its future children, for ``run_id``."""
    if not run_id:
        raise ValueError("a qualification needs a run ID to refuse repairs under")
    with _SWITCH.lock:
        if _SWITCH.run_id is None:
            _SWITCH.saved_env = os.environ.get(RUN_ID_ENV)
        _SWITCH.run_id = run_id
        os.environ[RUN_ID_ENV] = run_id


def deactivate() -> None:
    """Allow repairs again, restoring the environment variable as it was."""
    with _SWITCH.lock:
        if _SWITCH.run_id is None:
            return
        _SWITCH.run_id = None
        if _SWITCH.saved_env is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = _SWITCH.saved_env
        _SWITCH.saved_env = None


@contextmanager
def qualification_active(run_id: str) -> Iterator[None]:
    """Refuse repairs for the duration of the ``with`` block."""
    activate(run_id)
    try:
        yield
    finally:
        deactivate()


def active_run_id() -> str | None:
    """The run ID of the qualification this process belongs to, if any."""
    return _SWITCH.run_id or os.environ.get(RUN_ID_ENV) or None


def repair_action(function: Callable[P, R]) -> Callable[P, R]:
    """Mark ``function`` as a repair of the substrate; see the module docstring.

    The check happens at each call, not at decoration, because SDK modules are
    imported long before a session starts. A coroutine function stays one; it is
    refused when awaited, before its body runs.
    """
    name = f"{function.__module__}.{function.__qualname__}"

    def refuse_during_qualification() -> None:
        if active_run_id() is not None:
            raise SubstrateDefect(
                component="repair",
                detail=f"repair attempted during qualification: {name}",
            )

    if inspect.iscoroutinefunction(function):
        coroutine_function = cast(Callable[..., Any], function)

        @functools.wraps(function)
        async def refusing_coroutine(*args: Any, **kwargs: Any) -> Any:
            refuse_during_qualification()
            return await coroutine_function(*args, **kwargs)

        refusing_coroutine.__routerd_repair_action__ = True  # type: ignore[attr-defined]
        return cast(Callable[P, R], refusing_coroutine)

    @functools.wraps(function)
    def refusing(*args: P.args, **kwargs: P.kwargs) -> R:
        refuse_during_qualification()
        return function(*args, **kwargs)

    refusing.__routerd_repair_action__ = True  # type: ignore[attr-defined]
    return refusing


def is_repair_action(function: object) -> bool:
    """Whether ``function`` was marked with :func:`repair_action`."""
    return bool(getattr(function, "__routerd_repair_action__", False))
