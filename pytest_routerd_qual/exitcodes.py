"""The exit codes and classifications of a qualification session, in one place.

This module imports nothing beyond the standard library so that the plugin can name
its codes without paying for the heavy core.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class QualificationExit(enum.IntEnum):
    """How a qualification session ends, as seen by the shell that started it.

    Codes 0 to 5 keep pytest's meaning; 10 and 11 are added by the plugin. A CI
    pipeline branches on these numbers, so they never change.
    """

    #: Every check passed on a certified substrate.
    OK = 0
    #: Only routerd product failures: readiness, connectivity matrix or provider
    #: action checks failed on a certified substrate.
    PRODUCT_FAILURE = 1
    #: pytest's "interrupted": Ctrl-C or an explicit ``pytest.exit``.
    INTERRUPTED = 2
    #: pytest's "internal error".
    INTERNAL_ERROR = 3
    #: pytest's "usage error": bad options, unknown markers, unscoped tests.
    USAGE_ERROR = 4
    #: pytest's "no tests collected".
    NO_TESTS_COLLECTED = 5
    #: The certification preflight refused: no test ran.
    PREFLIGHT_FAILURE = 10
    #: A defect of the lab substrate was found: the run stopped; recertify.
    INFRA_FAILURE = 11


class Classification(str, enum.Enum):
    """The class of a failure, and of a whole run (its most severe failure)."""

    NONE = "none"
    PRODUCT_FAILURE = "product_failure"
    INFRA_FAILURE = "infra_failure"
    PREFLIGHT_FAILURE = "preflight_failure"

    @property
    def severity(self) -> int:
        """Rank used to pick the run's classification: higher wins."""
        return _SEVERITY[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY = {
    Classification.NONE: 0,
    Classification.PRODUCT_FAILURE: 1,
    Classification.INFRA_FAILURE: 2,
    Classification.PREFLIGHT_FAILURE: 3,
}


def most_severe(classes: Iterable[Classification]) -> Classification:
    """The most severe of ``classes``: preflight over infra over product over none."""
    return max(classes, key=lambda c: c.severity, default=Classification.NONE)


def exit_code_for(classification: Classification) -> QualificationExit:
    """The exit code that a run of this classification ends with."""
    return _EXIT_FOR[classification]


_EXIT_FOR = {
    Classification.NONE: QualificationExit.OK,
    Classification.PRODUCT_FAILURE: QualificationExit.PRODUCT_FAILURE,
    Classification.INFRA_FAILURE: QualificationExit.INFRA_FAILURE,
    Classification.PREFLIGHT_FAILURE: QualificationExit.PREFLIGHT_FAILURE,
}
