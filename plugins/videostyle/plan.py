"""The job plan: what preprocess decided and every later step reads (work/jobs/<id>/plan.json)."""

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from videostyle.defaults import BUILTIN_MODEL
from videostyle.errors import BadInputError, VideostyleError
from videostyle.media.ffmpeg import MediaInfo
from videostyle.models.base import Prepared
from videostyle.storage import BlobStore

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def job_prefix(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise BadInputError(f"job id {job_id!r} must match {JOB_ID.pattern}")
    return f"jobs/{job_id}"


@dataclass(frozen=True)
class Unit:
    """A run of consecutive frames that one rank styles and encodes on its own."""

    index: int
    first_frame: int
    frame_count: int
    seek_s: float  # decoding starts at the keyframe before this, from the file's start time
    start_s: float  # the unit holds the frames with start_s <= t < end_s
    end_s: float | None  # None: to the end of the video


@dataclass(frozen=True)
class Plan:
    job_id: str
    video: str  # the input blob's name
    source_version: str  # which content of that name this job processes (BlobStore.version)
    source_ext: str
    width: int
    height: int
    frame_count: int
    frame_rate: str  # exact rational, "num/den"
    start_s: float
    duration_s: float
    audio: bool
    audio_copied: bool  # False: re-encoded, the output container could not carry it
    model: str  # a name in videostyle.models.registry
    options: dict[str, Any]  # the model's options, complete (its defaults filled in)
    crf: int
    units: tuple[Unit, ...]
    prepared: str | None = None  # the blob of what the model's `prepare` returned, if anything
    # When the source's content was written (seconds since the epoch): which of two versions of
    # one name is newer. 0 in plans written before it was recorded.
    source_modified: float = 0.0
    source_bytes: int = 0  # the snapshot's size; 0 in plans written before it was recorded
    # Every frame's source timestamp is stored beside the plan (`timestamps_name`), in ticks of
    # this; "" in plans written before: their frames sit on the grid of `frame_rate`.
    time_base: str = ""
    pix_fmt: str = "yuv420p"  # what the units are coded in (media.conversions.output_pix_fmt)
    deinterlace: bool = False  # the source is interlaced: frames go through bwdif first
    changes: tuple[str, ...] = ()  # how the output differs from the source, in words
    audio_start_s: float = 0.0  # when the audio starts in the source (MPEG-TS: 1.4 s)
    # The temporal mode: frames steadied along the motion (videostyle.temporal); False in plans
    # written before it existed.
    temporal: bool = False

    @property
    def prefix(self) -> str:
        return job_prefix(self.job_id)

    @property
    def rate(self) -> Fraction:
        return Fraction(self.frame_rate)

    @property
    def source_name(self) -> str:
        return f"{self.prefix}/source{self.source_ext}"

    @property
    def audio_name(self) -> str:
        return f"{self.prefix}/audio.m4a"

    def unit_name(self, unit: Unit) -> str:
        return f"{self.prefix}/units/{unit.index:05d}.mp4"

    @property
    def timestamps_name(self) -> str:
        return f"{self.prefix}/timestamps.json"

    @property
    def stitched_name(self) -> str:
        return f"{self.prefix}/stitched.mp4"

    def timing_name(self, step: str) -> str:
        return f"{self.prefix}/timings/{step}.json"

    def check_source(self, snapshot: Path) -> None:
        """Refuse a source snapshot that is not the one this job's preprocess stored."""
        size = snapshot.stat().st_size
        if self.source_bytes and size != self.source_bytes:
            raise VideostyleError(
                f"job {self.job_id}: its source snapshot holds {size} bytes, its plan "
                f"{self.source_bytes}: another job's data is in its place"
            )

    def check_video(self, info: MediaInfo, what: str) -> None:
        """Refuse a video of this job (`what`: its role) that does not match the plan."""
        found = (info.frame_count, info.width, info.height, info.audio_streams > 0)
        planned = (self.frame_count, self.width, self.height, self.audio)
        if found != planned:
            raise VideostyleError(
                f"job {self.job_id}: its {what} has {found[0]} frames of {found[1]}x{found[2]}, "
                f"audio {found[3]}; its plan {planned[0]} frames of {planned[1]}x{planned[2]}, "
                f"audio {planned[3]}: another job's data is in its place"
            )

    def save(self, work: BlobStore) -> None:
        work.write_bytes(plan_name(self.job_id), json.dumps(asdict(self), indent=1).encode())


def plan_name(job_id: str) -> str:
    return f"{job_prefix(job_id)}/plan.json"


def load_plan(work: BlobStore, job_id: str) -> Plan:
    name = plan_name(job_id)
    if not work.exists(name):
        raise BadInputError(f"job {job_id} has no plan ({work.uri(name)}): run preprocess first")
    raw = json.loads(work.read_bytes(name))
    raw["units"] = tuple(Unit(**u) for u in raw["units"])
    raw["changes"] = tuple(raw.get("changes", ()))
    if "options" not in raw:  # written before models had options: style and strength
        if raw["model"] != BUILTIN_MODEL:
            raise BadInputError(f"job {job_id}'s plan is too old: run its video as a new job")
        raw["options"] = {"style": raw.pop("style"), "strength": raw.pop("strength")}
    return Plan(**raw)


def store_timestamps(work: BlobStore, plan: Plan, pts: Sequence[int]) -> None:
    """Store every frame's source timestamp (ticks of `plan.time_base`) with the job."""
    work.write_bytes(plan.timestamps_name, json.dumps(list(pts)).encode())


def load_timestamps(work: BlobStore, plan: Plan) -> tuple[Fraction, list[int]]:
    """Every frame's source timestamp and the time base it is counted in."""
    if plan.time_base:
        pts: list[int] = json.loads(work.read_bytes(plan.timestamps_name))
        if len(pts) != plan.frame_count:
            raise VideostyleError(
                f"job {plan.job_id}: {len(pts)} timestamps stored for {plan.frame_count} frames"
            )
        return Fraction(plan.time_base), pts
    # A plan from before timestamps were stored: frames on the exact grid of its rate.
    tick = 1 / (plan.rate * 1000)
    start = round(plan.start_s / tick)
    return tick, [start + 1000 * k for k in range(plan.frame_count)]


def store_prepared(work: BlobStore, job_id: str, prepared: Prepared) -> str | None:
    """Store what a model prepared with the job: its blob name, None when there is nothing."""
    if prepared is None:
        return None
    if isinstance(prepared, bytes):
        name, data = f"{job_prefix(job_id)}/prepared.bin", prepared
    elif isinstance(prepared, dict):
        name, data = f"{job_prefix(job_id)}/prepared.json", json.dumps(prepared).encode()
    else:
        raise TypeError(f"a model prepares bytes, a dict or None, not {type(prepared).__name__}")
    work.write_bytes(name, data)
    return name


def load_prepared(work: BlobStore, plan: Plan) -> Prepared:
    """What the job's model prepared, as `prepare` returned it."""
    if plan.prepared is None:
        return None
    data = work.read_bytes(plan.prepared)
    if plan.prepared.endswith(".json"):
        prepared: dict[str, Any] = json.loads(data)
        return prepared
    return data
