"""A video through `videostyle run` (every step, mpirun -n 2), and the model applied directly to
frames: what the pipeline's output is checked against."""

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from videostyle.commands import process_env, step_argv
from videostyle.defaults import BUILTIN_MODEL
from videostyle.models.registry import load_model

STYLE = "starry-night"  # textured up to the picture's very edges: padding there shows


def run_styled(
    source: Path,
    tmp_path: Path,
    *,
    max_unit_frames: int = 4,
    ranks: int = 2,
    output: Path | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """`python -m videostyle run` on `source` in STYLE, as a user types it, in units of at most
    `max_unit_frames` frames over `ranks` ranks, with more `args` and `env`: the output (at
    `output`, or beside `source`'s name in `tmp_path`) and the report it prints."""
    output = output or tmp_path / f"{source.stem}-styled.mp4"
    argv = [str(source), str(output), "--style", STYLE, "--ranks", str(ranks), *args]
    done = subprocess.run(
        step_argv("run", argv),
        env=process_env(
            {
                "VIDEOSTYLE_SCRATCH_DIR": str(tmp_path / "scratch"),
                "VIDEOSTYLE_MAX_UNIT_FRAMES": str(max_unit_frames),
                **(env or {}),
            }
        ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return output, report


def styled_directly(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`frames` [N, H, W, 3] through the model in STYLE, at their own size, one at a time."""
    transform = load_model(BUILTIN_MODEL, {"style": STYLE}, device=torch.device("cpu"))
    styled = [transform(torch.from_numpy(frame[None].copy())).numpy()[0] for frame in frames]
    return np.stack(styled)


def mean_difference(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())
