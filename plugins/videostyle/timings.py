"""Each step's wall time, kept beside the job so publish can report every stage."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from videostyle.plan import Plan
from videostyle.steps.table import STEPS
from videostyle.storage import BlobStore


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Yield a dict that holds the block's wall time in seconds once the block ends."""
    result: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = round(time.perf_counter() - start, 3)


def record(work: BlobStore, plan: Plan, step: str, facts: dict[str, Any]) -> None:
    work.write_bytes(plan.timing_name(step), json.dumps(facts).encode())


def collect(work: BlobStore, plan: Plan) -> dict[str, Any]:
    return {
        step: json.loads(work.read_bytes(plan.timing_name(step)))
        for step in STEPS
        if work.exists(plan.timing_name(step))
    }
