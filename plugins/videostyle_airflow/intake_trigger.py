"""Intake in seconds: the triggerer lists the inputs container once per interval and fires an
asset event for each video that is new, or has a new version, since the previous listing.

An idle container costs one List Blobs call per interval and fires nothing. Events only wake
the watch DAG, which lists the container itself and claims every unclaimed version: events
that arrive together are consolidated into one run, and losing one loses no video.

The trigger remembers what it has seen in memory only. A restarted trigger (a triggerer
restart, the watch unpaused, a changed interval) fires one event for the videos present at its
first listing, so uploads made while no trigger watched are claimed; videos that runs have
already claimed are left alone by their claims, which are exactly-once.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbAsyncHook
from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from azure.core.exceptions import AzureError

from videostyle_airflow.claims import blob_version
from videostyle_airflow.config import BlobLocation


class NewVideosTrigger(BaseEventTrigger):
    """Fires {"video", "version"} once per new video version under `prefix` in `container`, and
    {"videos_present": N} once at its first listing when the container holds N videos."""

    def __init__(self, *, container: str, prefix: str, wasb_conn_id: str, interval: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.container = container
        self.prefix = prefix
        self.wasb_conn_id = wasb_conn_id
        self.interval = interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "videostyle_airflow.intake_trigger.NewVideosTrigger",
            {
                "container": self.container,
                "prefix": self.prefix,
                "wasb_conn_id": self.wasb_conn_id,
                "interval": self.interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # As WasbHook does and WasbAsyncHook does not: else every listing logs its headers.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(
            os.environ.get("AZURE_HTTP_LOGGING_LEVEL", logging.WARNING)
        )
        seen: dict[str, str] | None = None
        hook = WasbAsyncHook(wasb_conn_id=self.wasb_conn_id)
        async with await hook.get_async_conn() as service:
            container = service.get_container_client(self.container)
            while True:
                try:
                    listed = {
                        blob.name[len(self.prefix) :]: blob_version(blob)
                        async for blob in container.list_blobs(name_starts_with=self.prefix or None)
                    }
                except AzureError as exc:
                    # Raising would restart the trigger without its memory, and the restarted
                    # one would fire again after every failed listing of an outage.
                    self.log.warning(
                        "Listing %s failed, again in %ss: %s",
                        BlobLocation(self.container, self.prefix).url,
                        self.interval,
                        exc,
                    )
                else:
                    for payload in changes(seen, listed):
                        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                    seen = listed
                await asyncio.sleep(self.interval)


def changes(seen: dict[str, str] | None, listed: dict[str, str]) -> list[dict[str, Any]]:
    """The events' payloads for a listing of video → version after `seen`, the previous listing
    (None: this is the trigger's first)."""
    if seen is None:
        return [{"videos_present": len(listed)}] if listed else []
    return [{"video": v, "version": ver} for v, ver in listed.items() if seen.get(v) != ver]
