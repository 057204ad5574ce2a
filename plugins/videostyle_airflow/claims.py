"""Exactly-once intake: a video is new to whoever first creates its claim marker.

Sensors only say that blobs exist. A create-only upload (`If-None-Match: *`) of a marker in
the work container is atomic in Blob Storage, so of any number of watch runs exactly one
creates it; the rest get 409 and leave the video alone.
"""

import json

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from azure.core.exceptions import ResourceExistsError

from videostyle_airflow.config import BlobLocation

CLAIMS_DIR = "claims/"


def claim_marker_name(work: BlobLocation, video: str) -> str:
    return f"{work.prefix}{CLAIMS_DIR}{video}"


def claim(hook: WasbHook, work: BlobLocation, *, video: str, etag: str, claimant: str) -> bool:
    """Create the video's claim marker; True if this claimant holds it (now or from before)."""
    marker = claim_marker_name(work, video)
    body = json.dumps({"video": video, "etag": etag, "claimant": claimant}).encode()
    try:
        hook.upload(work.container, marker, body, overwrite=False)
    except ResourceExistsError:
        # Our own earlier write also answers 409: a retried claim task, or a create whose
        # response was lost (azure-sdk-for-python#19486). Those must not lose the video.
        existing = json.loads(hook.download(work.container, marker).readall())
        return bool(existing.get("claimant") == claimant)
    return True


def claim_new_videos(
    hook: WasbHook, inputs: BlobLocation, work: BlobLocation, *, claimant: str
) -> list[str]:
    """Names (relative to the inputs prefix) of the input videos this claimant now holds."""
    container = hook.get_conn().get_container_client(inputs.container)
    claimed = []
    # Listings show committed blobs only: a video still uploading is not listed yet.
    for blob in container.list_blobs(name_starts_with=inputs.prefix or None):
        video = blob.name[len(inputs.prefix) :]
        # Listings and properties quote ETags differently; keep the bare value.
        if claim(hook, work, video=video, etag=str(blob.etag).strip('"'), claimant=claimant):
            claimed.append(video)
    return claimed
