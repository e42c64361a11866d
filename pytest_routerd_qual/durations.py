"""Durations as the certification manifest writes them: ``90s``, ``75m``, ``2h``;
and the one way the run's records write a moment.

One grammar for the manifest's ``run.lifecycle`` and for the options that may shorten
it, so that an option and the value it is compared with are read the same way. The
unit is the second: the watchdog's tests run with ``1s`` and ``2s``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

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


def utc_stamp(moment: datetime | None = None) -> str:
    """``moment`` (now by default) as an RFC 3339 UTC stamp with milliseconds, such
    as ``2026-12-03T17:00:00.250Z``: the result, the ledger and the evidence files
    all write their times so.

    :raises ValueError: for a time without its offset, which names no instant.
    """
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif moment.tzinfo is None:
        raise ValueError("a time without its offset cannot be written in UTC")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
