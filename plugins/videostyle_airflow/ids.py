"""Deterministic ids: the same run always gets the same job, the same video the same run."""

import hashlib
import re

# Both a job id ([A-Za-z0-9._-]+, the CLI's rule) and a run id (Airflow's default
# allowed_run_id_pattern) may use these characters.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_READABLE_CHARS = 80


def safe_id(text: str, *, prefix: str = "") -> str:
    """`text` made safe for ids, kept readable, with a digest so distinct texts stay distinct."""
    readable = _UNSAFE.sub("_", text).strip("._-")[:_READABLE_CHARS]
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def job_id_for_run(run_id: str) -> str:
    """The job of a process run: derived from its run id, so every try resumes the same job."""
    return safe_id(run_id)


def run_id_for_video(video: str, version: str) -> str:
    """The process run for a claimed video version: a retried trigger finds it, a new version
    of the video gets a run of its own."""
    return safe_id(f"{video}@{version}", prefix="video__")
