"""Generated clips to feed the pipeline, for the tests and the benchmark: ffmpeg's moving test
pattern with a 440 Hz tone. The one generator; tests/media.py and bench/media.py use it."""

import subprocess
from pathlib import Path

CLIP_RATE = "24000/1001"  # NTSC film rate: a hard-coded 30 fps or a rounded 23.98 shows up
CLIP_SIZE = (192, 108)  # 108 is not a multiple of 4: the model's padding is exercised
CLIP_FRAMES = 50


def make_clip(
    path: Path,
    *,
    frames: int = CLIP_FRAMES,
    audio: bool = True,
    size: tuple[int, int] = CLIP_SIZE,
    audio_codec: str = "aac",
    gop: int = 12,
) -> Path:
    """A real H.264 clip (moving test pattern, a keyframe every `gop` frames at most) with audio
    (a 440 Hz tone, AAC unless `audio_codec` says otherwise), made by ffmpeg; the container is
    the one `path` names."""
    width, height = size
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={CLIP_RATE},trim=end_frame={frames}",
    ]
    if audio:
        argv += [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:a",
            audio_codec,
            "-shortest",
        ]
    argv += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(gop), str(path)]
    subprocess.run(argv, check=True)
    return path
