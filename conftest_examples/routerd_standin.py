"""A routerd stand-in: routerd's status API, served over HTTP on 127.0.0.1.

It answers the few endpoints the example suite uses, from state it derives from the
topology, so the suite talks HTTP to something that behaves like routerd:

``GET /v1/status``, ``GET /v1/routers/NAME/peers``, ``GET /v1/routers/NAME/routes``,
``GET /v1/actions``, ``POST /v1/faults``, ``POST /v1/providers/P/actions/A``,
``POST /v1/reset``.

routerd peers every router with both route reflectors. When a route reflector
fails, it fences it through the provider (a PVE ``fence`` action) and keeps routing
through the other one; it never fences the last one. Under the product break it
does not announce ``aws-edge``'s prefix to ``pve-leaf-b``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from routerd_lab import LOST_ROUTE, Break, EventLog, Topology

#: The stand-in listens on the loopback only, on a port the kernel picks.
ADDRESS = ("127.0.0.1", 0)


class ApiError(Exception):
    """A request routerd refuses, with the HTTP status it answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class RouterdState:
    """routerd's view of the fabric; every method runs under one lock."""

    def __init__(self, topology: Topology, *, broken: Break = Break.NONE) -> None:
        self.topology = topology
        self.lost_route = LOST_ROUTE if broken is Break.PRODUCT else None
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.down: set[str] = set()
        self.fenced: list[str] = []
        self.actions: list[dict[str, Any]] = []

    def status(self) -> dict[str, Any]:
        return {
            "state": "ready",
            "version": self.topology.release,
            "routers": [n.name for n in self.topology.with_role("router")],
        }

    def _router(self, name: str) -> str:
        if name not in {n.name for n in self.topology.with_role("router")}:
            raise ApiError(404, f"no router {name!r}")
        return name

    def _reflectors(self) -> set[str]:
        return {n.name for n in self.topology.with_role("route-reflector")}

    def _live_reflectors(self) -> list[str]:
        return [
            n.name
            for n in self.topology.with_role("route-reflector")
            if n.name not in self.down and n.name not in self.fenced
        ]

    def peers(self, router: str) -> list[dict[str, str]]:
        self._router(router)
        return [
            {"peer": rr.name, "state": self._peer_state(rr.name)}
            for rr in self.topology.with_role("route-reflector")
        ]

    def _peer_state(self, reflector: str) -> str:
        if reflector in self.fenced:
            return "fenced"
        return "idle" if reflector in self.down else "established"

    def routes(self, router: str) -> list[dict[str, Any]]:
        self._router(router)
        via = self._live_reflectors()
        if not via:
            return []
        return [
            {"prefix": other.prefix, "learnedFrom": via}
            for other in self.topology.with_role("router")
            if other.name != router and (router, other.name) != self.lost_route
        ]

    def inject(self, fault: dict[str, Any]) -> dict[str, Any]:
        """A fault the scenario injects; routerd reacts as it would in production."""
        kind, target = fault.get("kind"), str(fault.get("target"))
        if kind != "route-reflector-down" or target not in self._reflectors():
            raise ApiError(400, f"unsupported fault {fault!r}")
        self.down.add(target)
        # routerd fences a reflector that missed its heartbeats so that it cannot
        # come back half-alive, unless it is the last one: then it waits for it.
        if self._live_reflectors():
            self._fence(target, "missed heartbeats")
        return {"accepted": fault}

    def _fence(self, target: str, reason: str) -> dict[str, Any]:
        self.fenced.append(target)
        self.down.discard(target)
        action = {
            "seq": len(self.actions) + 1,
            "provider": "pve",
            "action": "fence",
            "target": target,
            "reason": reason,
            "result": "done",
        }
        self.actions.append(action)
        return action

    def provider_action(
        self, provider: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        target = str(body.get("target"))
        if (provider, action) == ("pve", "fence"):
            if target not in self._reflectors():
                raise ApiError(400, f"{target!r} is not a route reflector")
            if self._live_reflectors() == [target]:
                raise ApiError(409, f"refused: {target} is the last route reflector")
            return self._fence(target, "operator request")
        if (provider, action) == ("aws", "publish-routes"):
            table = [route["prefix"] for route in self.routes(target)]
            return {"provider": "aws", "target": target, "routeTable": table}
        raise ApiError(404, f"no provider action {provider}/{action}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(lambda: self._get(self.path.strip("/").split("/")))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._answer(lambda: self._post(self.path.strip("/").split("/"), body))

    def _get(self, parts: list[str]) -> Any:
        state = self.server.state
        match parts:
            case ["v1", "status"]:
                return state.status()
            case ["v1", "routers", name, "peers"]:
                return state.peers(name)
            case ["v1", "routers", name, "routes"]:
                return state.routes(name)
            case ["v1", "actions"]:
                return state.actions
        raise ApiError(404, f"no endpoint GET {self.path}")

    def _post(self, parts: list[str], body: dict[str, Any]) -> Any:
        state = self.server.state
        match parts:
            case ["v1", "faults"]:
                return state.inject(body)
            case ["v1", "providers", provider, "actions", action]:
                return state.provider_action(provider, action, body)
            case ["v1", "reset"]:
                state.reset()
                return {"reset": True}
        raise ApiError(404, f"no endpoint POST {self.path}")

    def _answer(self, compute: Callable[[], Any]) -> None:
        try:
            with self.server.state.lock:
                status, payload = 200, compute()
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.message}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines on stderr would clutter pytest's captured output.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: RouterdState) -> None:
        super().__init__(ADDRESS, _Handler)
        self.state = state


class RouterdClient:
    """routerd's status API, as the suite calls it."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Never through a proxy: http_proxy in the environment must not capture
        # requests meant for the loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"RouterdClient({self.url!r})"

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                message = json.loads(exc.read()).get("error", exc.reason)
            raise ApiError(exc.code, message) from None

    def status(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/status"))

    def peers(self, router: str) -> dict[str, str]:
        """Each route reflector of ``router`` and the state of its session."""
        entries = self.request("GET", f"/v1/routers/{router}/peers")
        return {entry["peer"]: entry["state"] for entry in entries}

    def routes(self, router: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/v1/routers/{router}/routes"))

    def prefixes(self, router: str) -> list[str]:
        return [route["prefix"] for route in self.routes(router)]

    def actions(self) -> list[dict[str, Any]]:
        """The provider actions routerd has run, in order."""
        return list(self.request("GET", "/v1/actions"))

    def inject_fault(self, kind: str, target: str) -> None:
        self.request("POST", "/v1/faults", {"kind": kind, "target": target})

    def provider_action(self, provider: str, action: str, target: str) -> Any:
        path = f"/v1/providers/{provider}/actions/{action}"
        return self.request("POST", path, {"target": target})

    def reset(self) -> None:
        self.request("POST", "/v1/reset", {})


@contextmanager
def serve_routerd(
    topology: Topology, *, broken: Break = Break.NONE, events: EventLog | None = None
) -> Iterator[RouterdClient]:
    """Serve a routerd stand-in on 127.0.0.1 until the block ends."""
    events = events or EventLog()
    server = _Server(RouterdState(topology, broken=broken))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"routerd-standin {url}",
        daemon=True,
    )
    thread.start()
    events.record("standin-started", url=url)
    try:
        yield RouterdClient(url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        events.record("standin-stopped", url=url)
