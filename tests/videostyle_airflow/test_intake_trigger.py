"""NewVideosTrigger against Azurite, its run() driven directly with a short interval.

Every HTTP request of the async Azure clients (only the trigger's, here) is recorded, so the
tests wait on listings and events, never on the clock.
"""

import asyncio
import hashlib
import importlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.serialization.decoders import smart_decode_trigger_kwargs
from airflow.serialization.encoders import encode_trigger
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob import BlobServiceClient

from scripts.azurite import azurite_connection_string, free_port
from tests.conftest import start_azurite
from videostyle_airflow.config import BLOB_CONN_ID, BlobLocation, inputs_location
from videostyle_airflow.intake_trigger import NewVideosTrigger

INTERVAL = 0.25
# The longest an expected event may take: it is due at the next listing, so this bound only
# keeps a loaded machine from failing the test; `listings` shows which listing saw it.
DUE = 10.0
QUIET_LISTINGS = 3
CONTENT = b"not really a video"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (the version Blob Storage reports)


class Requests:
    """The async Azure clients' HTTP requests: when each started, and its URL."""

    def __init__(self) -> None:
        self.made: list[tuple[float, str]] = []
        self._new = asyncio.Event()

    def record(self, url: str) -> None:
        self.made.append((time.monotonic(), url))
        self._new.set()

    async def reach(self, count: int) -> None:
        """Until `count` requests have started (bounded: the trigger lists once per interval)."""
        async with asyncio.timeout(DUE + count * INTERVAL):
            while len(self.made) < count:
                self._new.clear()
                await self._new.wait()

    def since(self, moment: float) -> int:
        return sum(started > moment for started, _ in self.made)


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Requests:
    made = Requests()
    send = AioHttpTransport.send

    async def recorded_send(transport: AioHttpTransport, request: Any, **kwargs: Any) -> Any:
        made.record(str(request.url))
        return await send(transport, request, **kwargs)

    monkeypatch.setattr(AioHttpTransport, "send", recorded_send)
    return made


class Watch:
    """A trigger's run() consumed in a task of its own; its events' payloads queue up."""

    def __init__(self, http: Requests) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.http = http

    async def consume(self, trigger: NewVideosTrigger) -> None:
        async for event in trigger.run():
            self.events.put_nowait(event.payload)

    async def next_event(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), DUE)

    async def assert_quiet(self) -> None:
        """No event from the next QUIET_LISTINGS listings (the one after them has started, so
        they have all been compared)."""
        await self.http.reach(len(self.http.made) + QUIET_LISTINGS + 1)
        assert self.events.empty(), self.events.get_nowait()


@asynccontextmanager
async def watching(trigger: NewVideosTrigger, http: Requests) -> AsyncIterator[Watch]:
    watch = Watch(http)
    task = asyncio.create_task(watch.consume(trigger))
    try:
        yield watch
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task  # anything else the trigger raised fails the test


def trigger_on(location: BlobLocation, conn_id: str = BLOB_CONN_ID) -> NewVideosTrigger:
    return NewVideosTrigger(
        container=location.container,
        prefix=location.prefix,
        wasb_conn_id=conn_id,
        interval=INTERVAL,
    )


async def upload(location: BlobLocation, name: str, content: bytes = CONTENT) -> float:
    """Upload `name` from a thread (the event loop keeps running the trigger); when it was done."""
    hook = WasbHook(wasb_conn_id=BLOB_CONN_ID)
    await asyncio.to_thread(
        hook.upload, location.container, location.prefix + name, content, overwrite=True
    )
    return time.monotonic()


@pytest.mark.asyncio
@pytest.mark.usefixtures("blob_connection")
async def test_an_upload_fires_one_event_naming_it_at_the_next_listing(
    http: Requests,
) -> None:
    inputs = inputs_location()
    async with watching(trigger_on(inputs), http) as watch:
        # The second listing has started, so the first (of an empty container) is answered
        # and seen: an upload now is new to the trigger, whatever the machine's load.
        await http.reach(2)

        done = await upload(inputs, "clips/my cat.mp4")
        event = await watch.next_event()

        assert event == {"video": "clips/my cat.mp4", "version": md5(CONTENT)}
        # Seen by the first listing that started after the upload (or one already running).
        assert http.since(done) <= 1
        await watch.assert_quiet()


@pytest.mark.asyncio
@pytest.mark.usefixtures("blob_connection")
async def test_the_same_bytes_again_fire_nothing_and_other_bytes_fire(
    http: Requests,
) -> None:
    inputs = inputs_location()
    async with watching(trigger_on(inputs), http) as watch:
        await http.reach(2)  # the first listing answered: see above
        await upload(inputs, "a.mp4")
        assert await watch.next_event() == {"video": "a.mp4", "version": md5(CONTENT)}

        await upload(inputs, "a.mp4")  # a new ETag, the same content MD5
        await watch.assert_quiet()

        await upload(inputs, "a.mp4", b"the director's cut")
        assert await watch.next_event() == {"video": "a.mp4", "version": md5(b"the director's cut")}
        await watch.assert_quiet()


@pytest.mark.asyncio
@pytest.mark.usefixtures("blob_connection")
async def test_an_idle_container_costs_one_listing_per_interval(
    http: Requests, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = inputs_location()
    await upload(inputs, "old.mp4")
    # As in a triggerer where no WasbHook has quietened the SDK's logging of each request.
    caplog.set_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy")
    async with watching(trigger_on(inputs), http) as watch:
        # The first listing fires once for what is there, then nothing changes.
        assert await watch.next_event() == {"videos_present": 1}
        await http.reach(8)

        assert watch.events.empty()
    starts = [started for started, _ in http.made]
    assert all("comp=list" in url for _, url in http.made)
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert min(gaps) >= INTERVAL * 0.99  # no listing before its interval is up
    assert [r.message for r in caplog.records if r.name.startswith("azure")] == []


@pytest.mark.asyncio
@pytest.mark.usefixtures("blob_connection")
async def test_a_restarted_trigger_fires_once_for_the_videos_present(
    http: Requests,
) -> None:
    inputs = inputs_location()
    trigger = trigger_on(inputs)
    await upload(inputs, "a.mp4")
    await upload(inputs, "b.mp4")
    # What the DAG processor stores, and the triggerer rebuilds the trigger from.
    stored = encode_trigger(trigger)
    kwargs = {
        name: smart_decode_trigger_kwargs(value)  # type: ignore[no-untyped-call]  # unannotated in Airflow
        for name, value in stored["kwargs"].items()
    }
    module, _, name = stored["classpath"].rpartition(".")
    restarted = getattr(importlib.import_module(module), name)(**kwargs)

    assert restarted.serialize() == trigger.serialize()
    assert trigger.serialize() == (
        "videostyle_airflow.intake_trigger.NewVideosTrigger",
        {
            "container": inputs.container,
            "prefix": "",
            "wasb_conn_id": BLOB_CONN_ID,
            "interval": INTERVAL,
        },
    )
    async with watching(restarted, http) as watch:
        assert await watch.next_event() == {"videos_present": 2}
        await watch.assert_quiet()


@pytest.mark.asyncio
async def test_only_videos_under_the_prefix_fire_named_relative_to_it(
    blob_connection: str, http: Requests
) -> None:
    inputs = BlobLocation(f"{blob_connection}-in", "incoming/")
    async with watching(trigger_on(inputs), http) as watch:
        await http.reach(2)  # the first listing answered: see above
        await upload(BlobLocation(inputs.container, "elsewhere/"), "b.mp4")
        await upload(inputs, "a.mp4")

        assert await watch.next_event() == {"video": "a.mp4", "version": md5(CONTENT)}
        await watch.assert_quiet()


@pytest.fixture
def private_azurite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A private Azurite the test may stop and start: its port, data folder and process, and a
    connection `private_blob` to it whose SDK does not retry (a listing fails at once)."""
    port, location = free_port(), tmp_path / "azurite"
    service: dict[str, Any] = {
        "port": port,
        "location": location,
        "proc": start_azurite(port, location),
    }
    connection = azurite_connection_string(port)
    BlobServiceClient.from_connection_string(connection).create_container("vin")
    extra = {"connection_string": connection, "retry_total": 0}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRIVATE_BLOB", json.dumps({"conn_type": "wasb", "extra": extra})
    )
    yield service
    service["proc"].terminate()
    service["proc"].wait(timeout=10)


@pytest.mark.asyncio
async def test_a_blob_service_outage_fires_nothing_again(
    private_azurite: dict[str, Any], http: Requests
) -> None:
    inputs = BlobLocation("vin", "")
    store = BlobServiceClient.from_connection_string(
        azurite_connection_string(private_azurite["port"])
    ).get_container_client("vin")
    store.upload_blob("a.mp4", CONTENT)
    async with watching(trigger_on(inputs, "private_blob"), http) as watch:
        assert await watch.next_event() == {"videos_present": 1}

        private_azurite["proc"].terminate()
        private_azurite["proc"].wait(timeout=10)
        # A listing fails, and the trigger lists again an interval later: it lives on.
        await http.reach(len(http.made) + 2)
        private_azurite["proc"] = await asyncio.to_thread(
            start_azurite, private_azurite["port"], private_azurite["location"]
        )
        await asyncio.to_thread(store.upload_blob, "b.mp4", CONTENT)

        # It kept its memory: a.mp4 is not new, and nothing fires for "videos present".
        assert await watch.next_event() == {"video": "b.mp4", "version": md5(CONTENT)}
        await watch.assert_quiet()
