"""Enforce routerd's release qualification policy in pytest.

The names exported here are cheap to import: the heavy core (jsonschema, pydantic,
pendulum) loads only when a session is a qualification.
"""

from __future__ import annotations

from .defects import SubstrateDefect
from .exitcodes import Classification, QualificationExit
from .repair import repair_action

__all__ = ["Classification", "QualificationExit", "SubstrateDefect", "repair_action"]
__version__ = "0.1.0"
