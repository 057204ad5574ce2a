"""The job plan: what preprocess decided and every later step reads (work/jobs/<id>/plan.json)."""

import json
import re
from dataclasses import asdict, dataclass
from fractions import Fraction

from videostyle.errors import BadInputError
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
    seek_s: float  # decoding starts at the keyframe before this
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
    model: str
    style: str | None
    strength: float
    crf: int
    units: tuple[Unit, ...]

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
    def stitched_name(self) -> str:
        return f"{self.prefix}/stitched.mp4"

    def timing_name(self, step: str) -> str:
        return f"{self.prefix}/timings/{step}.json"

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
    return Plan(**raw)
