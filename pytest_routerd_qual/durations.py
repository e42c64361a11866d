"""Durations as the certification manifest writes them: ``90s``, ``75m``, ``2h``.

One grammar for the manifest's ``run.lifecycle`` and for the options that may shorten
it, so that an option and the value it is compared with are read the same way. The
unit is the second: the watchdog's tests run with ``1s`` and ``2s``.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """The number of seconds ``text`` stands for.

    The grammar is the manifest schema's: a positive integer without a leading zero,
    then ``s``, ``m``, ``h`` or ``d``, and nothing else (no spaces, no sign, no
    fraction, no compound such as ``1h30m``).

    :raises ValueError: with a message that says what a duration looks like.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a positive whole number without a "
            "leading zero followed by s, m, h or d, such as 90s, 75m or 2h"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_seconds(seconds: int) -> str:
    """``seconds`` in the largest unit that divides it exactly, such as ``75m``."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
