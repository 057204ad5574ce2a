"""Claims against Azurite: each input video is claimed once, whoever asks and however often."""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

from videostyle_airflow.claims import (
    claim_marker_name,
    claim_new_videos,
    record_claim,
    run_conf,
)
from videostyle_airflow.config import BLOB_CONN_ID, BlobLocation, inputs_location, work_location


@pytest.fixture
def hook(blob_connection: str) -> WasbHook:
    return WasbHook(wasb_conn_id=BLOB_CONN_ID)


def upload_videos(
    hook: WasbHook, inputs: BlobLocation, *names: str, content: bytes = b"not really a video"
) -> None:
    for name in names:
        hook.upload(inputs.container, inputs.prefix + name, content, overwrite=True)


def names(claimed: list[dict[str, str]]) -> list[str]:
    return sorted(c["video"] for c in claimed)


def test_two_new_videos_are_claimed_once(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4", "sub dir/b.mp4")

    first = claim_new_videos(hook, inputs, work, claimant="watch/run-1")
    second = claim_new_videos(hook, inputs, work, claimant="watch/run-2")

    assert names(first) == ["a.mp4", "sub dir/b.mp4"]
    assert second == []
    marker = json.loads(hook.download(work.container, claim_marker_name(work, "a.mp4")).readall())
    assert marker["video"] == "a.mp4"
    assert marker["claimant"] == "watch/run-1"
    assert marker["version"] == hashlib.md5(b"not really a video").hexdigest()  # noqa: S324


def test_the_same_bytes_uploaded_again_are_not_new(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["a.mp4"]

    upload_videos(hook, inputs, "a.mp4")  # a new ETag, the same content
    assert claim_new_videos(hook, inputs, work, claimant="watch/run-2") == []


def test_a_new_version_under_the_same_name_is_new(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")
    [first] = claim_new_videos(hook, inputs, work, claimant="watch/run-1")

    upload_videos(hook, inputs, "a.mp4", content=b"the director's cut")
    [second] = claim_new_videos(hook, inputs, work, claimant="watch/run-2")

    assert first["video"] == second["video"] == "a.mp4"
    assert first["version"] != second["version"]
    assert claim_new_videos(hook, inputs, work, claimant="watch/run-3") == []


def test_only_the_new_video_is_claimed_later(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "old.mp4")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["old.mp4"]

    upload_videos(hook, inputs, "new.mp4")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-2")) == ["new.mp4"]


def test_a_retried_claim_keeps_its_videos(hook: WasbHook) -> None:
    # A claim task that wrote its markers and then died must find them again on retry,
    # or its videos would never be processed.
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["a.mp4"]
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["a.mp4"]
    assert claim_new_videos(hook, inputs, work, claimant="watch/run-2") == []


def test_prefixes_scope_inputs_and_claims(hook: WasbHook, blob_connection: str) -> None:
    inputs = BlobLocation(f"{blob_connection}-in", "incoming/")
    work = BlobLocation(f"{blob_connection}-work", "airflow/")
    upload_videos(hook, inputs, "a.mp4")
    hook.upload(inputs.container, "elsewhere/b.mp4", b"outside the inputs prefix")

    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["a.mp4"]
    assert hook.check_for_blob(work.container, "airflow/claims/a.mp4")


def test_racing_claimants_claim_a_video_once(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")

    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = list(
            pool.map(
                lambda n: claim_new_videos(hook, inputs, work, claimant=f"watch/run-{n}"), range(8)
            )
        )

    assert sorted(map(names, claims)) == [[]] * 7 + [["a.mp4"]]


def marker_of(hook: WasbHook, work: BlobLocation, video: str) -> dict[str, str]:
    marker = hook.download(work.container, claim_marker_name(work, video)).readall()
    return dict(json.loads(marker))


def test_a_run_started_by_hand_keeps_intake_off_its_version(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")

    version = record_claim(hook, inputs, work, video="a.mp4", claimant="process/manual__1")

    assert version == hashlib.md5(b"not really a video").hexdigest()  # noqa: S324
    assert marker_of(hook, work, "a.mp4")["claimant"] == "process/manual__1"
    assert claim_new_videos(hook, inputs, work, claimant="watch/run-1") == []
    upload_videos(hook, inputs, "a.mp4", content=b"the director's cut")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-2")) == ["a.mp4"]


def test_a_run_the_watch_started_keeps_the_watch_claim(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")
    [claimed] = claim_new_videos(hook, inputs, work, claimant="watch/run-1")

    # Its first try and a retry: neither refuses the run nor changes the claim.
    for _ in range(2):
        version = record_claim(hook, inputs, work, video="a.mp4", claimant="process/video__a")
        assert version == claimed["version"]
    assert marker_of(hook, work, "a.mp4") == {
        "video": "a.mp4",
        "version": claimed["version"],
        "claimant": "watch/run-1",
    }


def test_a_run_by_hand_on_a_new_version_takes_the_claim_over(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4")
    assert names(claim_new_videos(hook, inputs, work, claimant="watch/run-1")) == ["a.mp4"]
    upload_videos(hook, inputs, "a.mp4", content=b"the director's cut")

    record_claim(hook, inputs, work, video="a.mp4", claimant="process/manual__1")

    assert marker_of(hook, work, "a.mp4")["claimant"] == "process/manual__1"
    assert claim_new_videos(hook, inputs, work, claimant="watch/run-2") == []


def test_a_run_on_a_video_not_listed_records_nothing(hook: WasbHook) -> None:
    # Preprocess fails such a run and says why; there is no version to claim.
    inputs, work = inputs_location(), work_location()
    upload_videos(hook, inputs, "a.mp4.bak", "b.mp4")

    for video in ("a.mp4", "sub/../b.mp4", "missing.mp4"):
        assert record_claim(hook, inputs, work, video=video, claimant="process/1") is None
    assert list(hook.get_conn().get_container_client(work.container).list_blobs()) == []


def test_a_claim_carries_the_look_its_uploader_set_as_metadata(hook: WasbHook) -> None:
    inputs, work = inputs_location(), work_location()
    hook.upload(
        inputs.container,
        inputs.prefix + "styled.mp4",
        b"a video",
        metadata={"style": "scream", "strength": "0.5", "camera": "B"},
    )
    upload_videos(hook, inputs, "plain.mp4")

    claimed = {c["video"]: c["look"] for c in claim_new_videos(hook, inputs, work, claimant="w")}

    # Only the look's keys: other metadata is the uploader's own business.
    assert claimed == {"styled.mp4": {"style": "scream", "strength": "0.5"}, "plain.mp4": {}}


@pytest.mark.parametrize(
    ("look", "defaults", "conf"),
    [
        ({}, {}, {"video": "v.mp4"}),
        ({}, {"style": "wheat-field"}, {"video": "v.mp4", "style": "wheat-field"}),
        (
            {"style": "scream", "strength": "0.5"},
            {"style": "wheat-field", "crf": 20},
            {"video": "v.mp4", "style": "scream", "strength": 0.5, "crf": 20},
        ),
        # Not a number: passed on as given, for the process DAG's Params to refuse by name.
        ({"strength": "strong"}, {}, {"video": "v.mp4", "strength": "strong"}),
        # The video is the blob's own name, whatever the defaults say.
        ({}, {"video": "other.mp4"}, {"video": "v.mp4"}),
    ],
)
def test_a_run_conf_is_the_defaults_then_the_uploaders_look(
    look: dict[str, str], defaults: dict[str, object], conf: dict[str, object]
) -> None:
    assert run_conf("v.mp4", look, defaults) == conf
