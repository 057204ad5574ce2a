"""Exactly-once intake: a video version is new to whoever first creates its claim marker.

Sensors only say that blobs exist. A create-only upload (`If-None-Match: *`) of a marker in
the work container is atomic in Blob Storage, so of any number of watch runs exactly one
creates it; the rest get 409 and leave the video alone. The marker records the version it
claimed: the same bytes uploaded again are not new, other bytes under the same name are.

Every path that processes a video version leaves its claim: the watch's runs claim before
starting a process run, and a process run records its own claim first thing (a run started
by hand included), so intake never processes that version again.
"""

import contextlib
import json
import logging
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.storage.blob import BlobProperties

from videostyle.storage import content_version
from videostyle_airflow.config import (
    BLOB_CONN_ID,
    PROCESS_DAG_ID,
    BlobLocation,
    inputs_location,
    work_location,
)

CLAIMS_DIR = "claims/"
# Blob metadata that chooses a video's look at upload; Blob Storage keeps metadata keys lowercase.
LOOK_METADATA = ("model", "style", "style_image", "strength")

log = logging.getLogger(__name__)


def claim_marker_name(work: BlobLocation, video: str) -> str:
    return f"{work.prefix}{CLAIMS_DIR}{video}"


def blob_version(blob: BlobProperties) -> str:
    """The listed blob's version, by the library's rule (videostyle.storage.content_version)."""
    return content_version(blob.content_settings.content_md5, blob.etag)


def _put_claim(
    hook: WasbHook, work: BlobLocation, *, video: str, version: str, claimant: str
) -> str | None:
    """Create the video's marker, or take it over from another version; the claimant of the
    marker that stands for `version`, None if another claimant took the marker meanwhile."""
    marker = hook.get_conn().get_blob_client(work.container, claim_marker_name(work, video))
    body = json.dumps({"video": video, "version": version, "claimant": claimant}).encode()
    try:
        marker.upload_blob(body, overwrite=False)
        return claimant
    except ResourceExistsError:
        held = marker.download_blob()
        existing: dict[str, Any] = json.loads(held.readall())
    if existing.get("version") == version:
        return str(existing.get("claimant"))
    try:  # a new version: take the marker over unless another claimant just did
        marker.upload_blob(
            body,
            overwrite=True,
            etag=held.properties.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return None
    return claimant


def claim(hook: WasbHook, work: BlobLocation, *, video: str, version: str, claimant: str) -> bool:
    """Create or take over the video's claim marker; True if this claimant holds `version`."""
    # Our own earlier write also stands for `version`: a retried claim task, or a create whose
    # response was lost (azure-sdk-for-python#19486). Those must not lose the video.
    return _put_claim(hook, work, video=video, version=version, claimant=claimant) == claimant


def claim_new_videos(
    hook: WasbHook, inputs: BlobLocation, work: BlobLocation, *, claimant: str
) -> list[dict[str, Any]]:
    """The input videos this claimant holds: name (relative to the inputs prefix), version,
    and the look its uploader chose in the blob's metadata (`look_of`)."""
    container = hook.get_conn().get_container_client(inputs.container)
    claimed = []
    # Listings show committed blobs only: a video still uploading is not listed yet.
    for blob in container.list_blobs(name_starts_with=inputs.prefix or None, include=["metadata"]):
        video, version = blob.name[len(inputs.prefix) :], blob_version(blob)
        if claim(hook, work, video=video, version=version, claimant=claimant):
            claimed.append({"video": video, "version": version, "look": look_of(blob.metadata)})
    return claimed


def look_of(metadata: dict[str, str] | None) -> dict[str, str]:
    """The job options an uploader set as blob metadata (`az storage blob upload --metadata
    style=scream`): LOOK_METADATA's keys only, as given; the process DAG's Params check them."""
    return {key: value for key in LOOK_METADATA if (value := (metadata or {}).get(key))}


def record_claim(
    hook: WasbHook, inputs: BlobLocation, work: BlobLocation, *, video: str, claimant: str
) -> str | None:
    """Claim the current version of `video` for a run that processes it whatever intake holds
    (a run started by hand is an explicit request): the version, None if no such video is listed.

    A claim that already stands for that version (the watch's, an earlier try's) is kept.
    """
    name = inputs.prefix + video
    container = hook.get_conn().get_container_client(inputs.container)
    # The version as intake's listing reports it, of a blob listed under exactly this name: a
    # name the service would resolve elsewhere (`a/../b`) never names a marker.
    listed = container.list_blobs(name_starts_with=name)
    version = next((blob_version(blob) for blob in listed if blob.name == name), None)
    if version is not None:
        _put_claim(hook, work, video=video, version=version, claimant=claimant)
    return version


def record_run_claim(*, video: str, run_id: str) -> None:
    """record_claim for the process run `run_id`, with the DAGs' connection and containers."""
    inputs = inputs_location()
    claimant = f"{PROCESS_DAG_ID}/{run_id}"
    hook = WasbHook(wasb_conn_id=BLOB_CONN_ID)
    version = record_claim(hook, inputs, work_location(), video=video, claimant=claimant)
    if version is None:
        log.warning("%r is not in %s: no claim to record", video, inputs.url)
    else:
        log.info("%r version %s is claimed: intake leaves it to %s", video, version, claimant)


def run_conf(video: str, look: dict[str, str], defaults: dict[str, Any]) -> dict[str, Any]:
    """A claimed video's process run conf: the intake defaults, then its uploader's look.

    Metadata values are strings: a strength that reads as a number becomes one; anything else
    goes as given, and the process DAG's Params refuse it, naming the param, in the watch's log.
    """
    conf: dict[str, Any] = {**defaults, **look, "video": video}
    if isinstance(conf.get("strength"), str):
        with contextlib.suppress(ValueError):
            conf["strength"] = float(conf["strength"])
    return conf
