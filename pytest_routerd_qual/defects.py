"""The exception a qualification suite raises when the lab itself is broken.

This module imports only the standard library: lab SDKs import it too.
"""

from __future__ import annotations


class SubstrateDefect(Exception):
    """A defect of the lab substrate, found during qualification.

    Raise it when a bridge, a guest agent (QGA), a config disk, a cloud bootstrap, an
    identity or a quota is broken. Wherever it is raised (a test, a fixture of any
    scope, a helper that wraps it in another exception), the run is classified
    ``infra_failure`` and stops: the substrate must be recertified, not repaired.

    :param component: what broke, as free text (``qga``, ``bridge``,
        ``config-disk``, ``cloud-bootstrap``, ``identity``, ``quota``, ``pve-vm``).
    :param detail: what was observed, for the operator.
    """

    def __init__(self, component: str, detail: str) -> None:
        super().__init__(component, detail)
        self.component = component
        self.detail = detail

    def __str__(self) -> str:
        return f"substrate defect in {self.component}: {self.detail}"
