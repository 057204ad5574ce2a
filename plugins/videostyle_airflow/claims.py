"""Exactly-once intake: a video version is new to whoever first creates its claim marker.

Sensors only say that blobs exist. A create-only upload (`If-None-Match: *`) of a marker in
the work container is atomic in Blob Storage, so of any number of watch runs exactly one
creates it; the rest get 409 and leave the video alone. The marker records the version it
claimed: the same bytes uploaded again are not new, other bytes under the same name are.
"""

import json
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.storage.blob import BlobProperties

from videostyle_airflow.config import BlobLocation

CLAIMS_DIR = "claims/"


def claim_marker_name(work: BlobLocation, video: str) -> str:
    return f"{work.prefix}{CLAIMS_DIR}{video}"


def blob_version(blob: BlobProperties) -> str:
    """Content MD5 where the service has one (a re-upload of the same bytes keeps it), else the
    ETag (chunked uploads get no whole-blob MD5, so any re-upload counts as new)."""
    md5 = blob.content_settings.content_md5
    return bytes(md5).hex() if md5 else str(blob.etag).strip('"')


def claim(hook: WasbHook, work: BlobLocation, *, video: str, version: str, claimant: str) -> bool:
    """Create or take over the video's claim marker; True if this claimant holds `version`."""
    marker = hook.get_conn().get_blob_client(work.container, claim_marker_name(work, video))
    body = json.dumps({"video": video, "version": version, "claimant": claimant}).encode()
    try:
        marker.upload_blob(body, overwrite=False)
        return True
    except ResourceExistsError:
        held = marker.download_blob()
        existing: dict[str, Any] = json.loads(held.readall())
    if existing.get("version") == version:
        # Our own earlier write also answers 409: a retried claim task, or a create whose
        # response was lost (azure-sdk-for-python#19486). Those must not lose the video.
        return bool(existing.get("claimant") == claimant)
    try:  # a new version: take the marker over unless another claimant just did
        marker.upload_blob(
            body,
            overwrite=True,
            etag=held.properties.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return False
    return True


def claim_new_videos(
    hook: WasbHook, inputs: BlobLocation, work: BlobLocation, *, claimant: str
) -> list[dict[str, str]]:
    """The input videos (name relative to the inputs prefix, and version) this claimant holds."""
    container = hook.get_conn().get_container_client(inputs.container)
    claimed = []
    # Listings show committed blobs only: a video still uploading is not listed yet.
    for blob in container.list_blobs(name_starts_with=inputs.prefix or None):
        video, version = blob.name[len(inputs.prefix) :], blob_version(blob)
        if claim(hook, work, video=video, version=version, claimant=claimant):
            claimed.append({"video": video, "version": version})
    return claimed
