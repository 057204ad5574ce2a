"""An emulated Kubernetes API: kmock's in-memory emulator, served over real HTTP on 127.0.0.1.

kmock stores what clients create and serves it back. `ApiServerEmulator` adds the few API
server behaviours the operators rely on: a uid and creationTimestamp on every created object,
201 Created, label selectors on lists (equality, `!=`, a key's presence or absence), field
selectors by equality (`involvedObject.name=...`), and garbage collection of objects whose
ownerReferences all point at deleted objects. No MPI Operator runs here: tests play it,
writing the MPIJob's status, its pods and their events; and they play an API server in
trouble by interrupting requests (`interrupts`: answer an error, or nothing for a while).

The server runs its own event loop in a thread, so that both the synchronous `kubernetes`
client (the operator, through KubernetesHook) and asyncio code (the trigger, through
AsyncKubernetesHook) reach it as they would reach a cluster. The `kubernetes_default`
connection points at it through a kubeconfig in a temporary folder, never ~/.kube/config.
"""

import asyncio
import datetime
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp.web
import kmock
import pytest

NAMESPACE = "videostyle-test"
MPIJOBS = "kubeflow.org/v2beta1/mpijobs"
SECRETS = "v1/secrets"
PODS = "v1/pods"
EVENTS = "v1/events"

T = TypeVar("T")
Interrupt = Callable[[kmock.Request], Awaitable[aiohttp.web.StreamResponse | None]]


class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with uids, 201 on create, label selectors and owner-based collection."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Called with each request before it is served: how tests play a controller.
        self.before_serving: list[Callable[[kmock.Request], None]] = []
        # Awaited with each request after those; the first response given is served instead:
        # how tests play an API server failing (an error answered, or an answer delayed).
        self.interrupts: list[Interrupt] = []

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        for effect in self.before_serving:
            effect(request)
        for interrupt in self.interrupts:
            if (interrupted := await interrupt(request)) is not None:
                return interrupted
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", _now())
        response = await super()._handle(request)
        if request.action == kmock.action.CREATE and response.status == 200:
            response.set_status(201)
        if request.action == kmock.action.DELETE and response.status == 200:
            self.collect_garbage()
        return response

    async def _serve_list(self, request: kmock.Request) -> Any:
        listing = cast(dict[str, Any], await super()._serve_list(request))
        if selector := request.params.get("labelSelector"):
            listing["items"] = [
                item
                for item in listing["items"]
                if _selects(selector, item.get("metadata", {}).get("labels") or {})
            ]
        if selector := request.params.get("fieldSelector"):
            listing["items"] = [item for item in listing["items"] if _has_fields(selector, item)]
        return listing

    def collect_garbage(self) -> None:
        """Delete every object whose owners are all gone, as the garbage collector does."""
        while True:
            live = [obj for obj in self.objects.values() if not obj.deleted]
            uids = {obj.raw["metadata"].get("uid") for obj in live}
            orphans = [
                obj
                for obj in live
                if (owners := obj.raw["metadata"].get("ownerReferences"))
                and all(owner["uid"] not in uids for owner in owners)
            ]
            if not orphans:
                return
            for obj in orphans:
                obj.delete()


class EmulatedKubernetes:
    """The running emulator: what it received, what it holds, and hooks to play a controller."""

    def __init__(self, server: ApiServerEmulator, url: str, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.url = url
        self._loop = loop

    def requests(self) -> list[kmock.Request]:
        """Every request received so far, in order."""
        return self._in_loop(lambda: list(self.server))

    def objects(self, resource: str, namespace: str = NAMESPACE) -> dict[str, dict[str, Any]]:
        """The live (not deleted) objects of a resource in a namespace, by name."""

        def live() -> dict[str, dict[str, Any]]:
            return {
                name: obj.raw
                for (res, ns, name), obj in self.server.objects.items()
                if res == kmock.resource(resource) and ns == namespace and not obj.deleted
            }

        return self._in_loop(live)

    def put(self, resource: str, obj: Mapping[str, Any], namespace: str = NAMESPACE) -> None:
        """Store an object as a controller would have created it."""
        stored = {"metadata": {"uid": str(uuid.uuid4()), "creationTimestamp": _now()}}
        stored["metadata"] |= obj["metadata"]
        key = (resource, namespace, obj["metadata"]["name"])
        self._in_loop(lambda: self.server.objects.__setitem__(key, {**obj, **stored}))

    def delete(self, resource: str, name: str, namespace: str = NAMESPACE) -> None:
        """Delete an object behind the clients' backs."""
        self._in_loop(lambda: self.server.objects[resource, namespace, name].delete())

    def report_statuses(
        self, name: str, statuses: list[dict[str, Any]], namespace: str = NAMESPACE
    ) -> None:
        """
        Play the MPI Operator: each read of MPIJob `name` first sets its next status.

        The last status stays. Reads of other objects see no change.
        """
        pending = list(statuses)

        def advance(request: kmock.Request) -> None:
            is_read = request.action == kmock.action.FETCH and request.resource == MPIJOBS
            if is_read and (request.namespace, request.name) == (namespace, name):
                status = pending.pop(0) if len(pending) > 1 else pending[0]
                self.server.objects[MPIJOBS, namespace, name]["status"] = status

        self._in_loop(lambda: self.server.before_serving.append(advance))

    def _in_loop(self, call: Callable[[], T]) -> T:
        """Run `call` on the server's loop, between requests, and return its result."""
        result: Future[T] = Future()

        def run() -> None:
            try:
                result.set_result(call())
            except Exception as exc:
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return result.result(timeout=10)


def _selects(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every term of `selector`: `k=v` (or `k==v`), `k!=v` (true where
    `k` is absent too), `k` (present) and `!k` (absent), as the API server reads them."""
    for term in (term.strip() for term in selector.split(",")):
        if "(" in term:
            raise NotImplementedError(f"the emulator knows no `in`/`notin` selectors: {selector}")
        if "!=" in term:
            key, value = term.split("!=", 1)
            matched = labels.get(key.strip()) != value.strip()
        elif "=" in term:
            key, value = term.split("=", 1)
            matched = labels.get(key.strip()) == value.removeprefix("=").strip()
        elif term.startswith("!"):
            matched = term[1:].strip() not in labels
        else:
            matched = term in labels
        if not matched:
            return False
    return True


def _has_fields(selector: str, item: Mapping[str, Any]) -> bool:
    """Whether `item` has every `path.to.field=value` of `selector` (equality only)."""
    for term in selector.split(","):
        path, _, value = term.partition("=")
        found: Any = item
        for key in path.strip().split("."):
            found = found.get(key) if isinstance(found, Mapping) else None
        if str(found) != value.removeprefix("=").strip():
            return False
    return True


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def kube_api() -> Iterator[EmulatedKubernetes]:
    """An emulated Kubernetes API on a free port of 127.0.0.1, for one test."""
    loop = asyncio.new_event_loop()
    started: Future[EmulatedKubernetes] = Future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with ApiServerEmulator() as server, kmock.Server(server) as http:
            # Listable before any object exists: the MPIJob CRD is installed, pods are core.
            for resource in (MPIJOBS, PODS, EVENTS):
                server.resources[resource] = kmock.ResourceInfo()
            started.set_result(EmulatedKubernetes(server, str(http.url).rstrip("/"), loop))
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.result(timeout=10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def kubernetes_connection(
    kube_api: EmulatedKubernetes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EmulatedKubernetes:
    """The `kubernetes_default` connection points at the emulated API (namespace NAMESPACE)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulated", "cluster": {"server": kube_api.url}}],
                "users": [{"name": "tests", "user": {"token": "emulated"}}],
                "contexts": [
                    {"name": "emulated", "context": {"cluster": "emulated", "user": "tests"}}
                ],
                "current-context": "emulated",
            }
        )
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DEFAULT",
        json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(kubeconfig), "namespace": NAMESPACE},
            }
        ),
    )
    return kube_api
