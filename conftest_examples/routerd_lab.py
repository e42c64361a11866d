"""The lab SDK of the example suite: a simulated routerd lab that runs in-process.

A routerd team drives its PVE and cloud lab through an SDK like this one: it knows
the topology, reaches each guest through its agent (QGA on PVE, SSM on AWS) and
sends probes across the fabric. This one simulates all of that, and can be told to
break through ``ROUTERD_LAB_BREAK``:

``substrate``
    the guest agent of ``pve-client-a`` stops answering (a substrate defect);
``product``
    routerd stops announcing ``aws-edge``'s prefix to ``pve-leaf-b``, so the pair
    ``pve-client-b->aws-client`` loses its route (a product defect; see
    :mod:`routerd_standin`).

The SDK reports substrate damage in the two ways the plugin understands: helpers
such as :meth:`Lab.require_guest_agent` raise :class:`SubstrateDefect`, and the raw
:class:`GuestAgentTimeout` is listed under ``substrate_exceptions`` in pytest.ini.
It imports only the standard library and :mod:`pytest_routerd_qual` (whose
top-level names are cheap and pytest-free).
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_routerd_qual import SubstrateDefect, repair_action

BREAK_ENV = "ROUTERD_LAB_BREAK"
EVENTS_ENV = "ROUTERD_LAB_EVENTS"
TOPOLOGY_FILE = Path(__file__).with_name("topology.json")

#: The guest whose agent dies under the substrate break: the 3rd test probes it.
DEAD_AGENT = "pve-client-a"
#: The router that loses a route under the product break, and whose prefix it loses.
LOST_ROUTE = ("pve-leaf-b", "aws-edge")


class Break(str, enum.Enum):
    """What the lab has been told to break."""

    NONE = "none"
    SUBSTRATE = "substrate"
    PRODUCT = "product"


def break_from_environment() -> Break:
    """The break named by ``ROUTERD_LAB_BREAK`` (unset or empty: none)."""
    value = os.environ.get(BREAK_ENV, "").strip() or Break.NONE.value
    try:
        return Break(value)
    except ValueError:
        raise ValueError(
            f"{BREAK_ENV}={value!r} is not a lab break: use substrate or product"
        ) from None


class GuestAgentTimeout(TimeoutError):
    """A guest agent did not answer in time.

    The suite's pytest.ini lists it under ``substrate_exceptions``: wherever it
    escapes, even from a routerd product check, the run is an infra failure.
    """


@dataclass(frozen=True)
class Node:
    """One machine of the topology."""

    name: str
    role: str
    provider: str
    vmid: int | None = None
    prefix: str | None = None
    router: str | None = None
    address: str | None = None

    @property
    def agent(self) -> str:
        return "qga" if self.provider == "pve" else "ssm"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # Short, because pytest prints it in every failure that involves a node.
        return f"Node({self.name!r})"


@dataclass(frozen=True)
class Pair:
    """One directed pair of the connectivity matrix."""

    source: Node
    target: Node

    def __str__(self) -> str:
        return f"{self.source.name}->{self.target.name}"

    def __repr__(self) -> str:
        return f"Pair({str(self)!r})"


@dataclass(frozen=True)
class Topology:
    """The release topology, read from topology.json."""

    environment: str
    topology: str
    release: str
    underlay_bridge: str
    nodes: tuple[Node, ...]

    @classmethod
    def load(cls, path: Path = TOPOLOGY_FILE) -> Topology:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            environment=data["environment"],
            topology=data["topology"],
            release=data["release"],
            underlay_bridge=data["underlayBridge"],
            nodes=tuple(Node(**node) for node in data["nodes"]),
        )

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"{name!r} is not in topology {self.topology}")

    def with_role(self, role: str) -> list[Node]:
        return [node for node in self.nodes if node.role == role]

    @property
    def pve_guests(self) -> list[Node]:
        """The PVE VMs in VMID order, the order the certifier probes them in."""
        pve = [node for node in self.nodes if node.vmid is not None]
        return sorted(pve, key=lambda node: node.vmid or 0)

    @property
    def cloud_nodes(self) -> list[Node]:
        return [node for node in self.nodes if node.provider != "pve"]

    def matrix_pairs(self) -> list[Pair]:
        """The full connectivity matrix: every client to every other client."""
        clients = self.with_role("client")
        return [Pair(a, b) for a in clients for b in clients if a is not b]


@dataclass(frozen=True)
class EventLog:
    """Lab events as JSON lines, so a run can be audited after the fact.

    The demo points ``ROUTERD_LAB_EVENTS`` at a file to check, once pytest has
    exited, that every routerd stand-in it started was stopped and that no repair
    ran. Appends of one short line are atomic, so xdist workers can share the file.
    """

    path: Path | None = None

    @classmethod
    def from_environment(cls) -> EventLog:
        value = os.environ.get(EVENTS_ENV)
        return cls(Path(value) if value else None)

    def record(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        entry = {"event": event, "pid": os.getpid(), "at": time.time(), **fields}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


@dataclass
class Guest:
    """A VM or instance, reached through its guest agent."""

    node: Node
    agent_answers: bool = True
    bootstrapped: bool = True

    def ping(self, timeout: float = 5.0) -> None:
        """Ask the guest agent for a sign of life (``guest-ping`` on QGA)."""
        if not self.agent_answers:
            raise GuestAgentTimeout(
                f"the {self.node.agent} of {self.node.name} did not answer "
                f"within {timeout:g}s"
            )

    def execute(self, argv: Sequence[str], timeout: float = 5.0) -> None:
        """Run a command in the guest (``guest-exec`` on QGA)."""
        # A real SDK would return the command's output; the simulated guests only
        # need to fail the way a dead agent fails.
        self.ping(timeout)


class RouteSource(Protocol):
    """Where the lab learns which routes routerd installed: routerd's own API."""

    def prefixes(self, router: str) -> list[str]: ...


@dataclass(frozen=True)
class Probe:
    """What a probe across the fabric observed."""

    pair: Pair
    delivered: bool
    detail: str


@dataclass(repr=False)
class Lab:
    """The lab substrate: its guests, its bridge, and probes across it."""

    topology: Topology
    broken: Break = Break.NONE
    events: EventLog = field(default_factory=EventLog)
    guests: dict[str, Guest] = field(init=False)

    def __post_init__(self) -> None:
        self.guests = {node.name: Guest(node) for node in self.topology.nodes}
        if self.broken is Break.SUBSTRATE:
            self.guests[DEAD_AGENT].agent_answers = False

    def __repr__(self) -> str:
        where = f"{self.topology.environment}/{self.topology.topology}"
        return f"Lab({where}, break={self.broken.value})"

    def bridge_forwards(self, bridge: str) -> bool:
        """Whether the underlay bridge forwards frames between the PVE guests."""
        return bridge == self.topology.underlay_bridge

    def require_guest_agent(self, name: str) -> Guest:
        """The guest, once its agent answers; a dead agent is a substrate defect."""
        guest = self.guests[name]
        try:
            guest.ping()
        except GuestAgentTimeout as exc:
            detail = f"{exc} (vmid {guest.node.vmid})"
            raise SubstrateDefect(guest.node.agent, detail) from exc
        return guest

    def require_cloud_bootstrap(self, name: str) -> Guest:
        """The instance, once cloud-init has finished on it."""
        guest = self.guests[name]
        if not guest.bootstrapped:
            raise SubstrateDefect("cloud-bootstrap", f"{name}: cloud-init unfinished")
        return guest

    def probe(self, pair: Pair, routes: RouteSource) -> Probe:
        """Send a probe from ``pair.source`` to ``pair.target`` across routerd."""
        assert pair.source.router is not None
        assert pair.target.router is not None
        # The probe starts inside the source guest, through its agent; a dead agent
        # raises GuestAgentTimeout here, unwrapped, as a real SDK call would.
        self.guests[pair.source.name].execute(["routerd-probe", str(pair.target)])
        if pair.source.router == pair.target.router:
            return Probe(pair, True, "same leaf")
        prefix = self.topology.node(pair.target.router).prefix
        installed = routes.prefixes(pair.source.router)
        if prefix in installed:
            return Probe(pair, True, f"{pair.source.router} routes {prefix}")
        return Probe(
            pair,
            False,
            f"{pair} undelivered: {pair.source.router} has no route to {prefix} "
            f"(installed: {', '.join(installed) or 'none'})",
        )


@repair_action
def restart_guest_agent(lab: Lab, name: str) -> None:
    """Restart a guest's agent: a repair for environment certification only.

    routerd-labs' certifiers call it while they certify the substrate, and record
    the repair in the manifest. The qualification suite never calls it: the policy
    forbids repairs once qualification has started, and ``repair_action`` refuses
    the call if a qualification session is running.
    """
    lab.events.record("repair", action="restart-guest-agent", target=name)
    lab.guests[name].agent_answers = True
