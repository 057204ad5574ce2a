"""Generated clips to feed the pipeline, for the tests and the benchmark: ffmpeg's moving test
pattern with a 440 Hz tone. The one generator; tests/media.py and bench/media.py use it."""

import subprocess
from fractions import Fraction
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
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    select: str | None = None,
    interlaced: bool = False,
) -> Path:
    """A real clip (moving test pattern, a keyframe every `gop` frames at most; H.264 in
    `pix_fmt` unless `codec` says otherwise) with audio (a 440 Hz tone, AAC unless `audio_codec`
    says otherwise), made by ffmpeg; the container is the one `path` names.

    `select`: of the `frames` generated, only those this ffmpeg select expression keeps, each at
    its own time: a variable frame rate. `interlaced`: top field first, each frame woven from two
    moments of the pattern at twice the rate (what a broadcast camera records), coded as such.
    """
    width, height = size
    pattern = f"testsrc2=size={width}x{height}:rate={CLIP_RATE}"
    if interlaced:
        fields = Fraction(CLIP_RATE) * 2
        pattern = f"testsrc2=size={width}x{height}:rate={fields.numerator}/{fields.denominator}"
        frames *= 2
    pattern += f",trim=end_frame={frames}"
    if width % 2 or height % 2:  # testsrc2 draws even sides only
        pattern += f",scale={width}:{height}"
    if select is not None:
        pattern += f",select='{select}'"
    if interlaced:
        pattern += ",tinterlace=mode=interleave_top,setfield=tff"
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        pattern,
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
    argv += ["-c:v", codec, "-pix_fmt", pix_fmt, "-g", str(gop)]
    if select is not None or interlaced:  # every frame at its own time, none added
        argv += ["-fps_mode", "passthrough"]
    if interlaced:
        argv += ["-flags", "+ilme+ildct", "-top", "1"]
    argv.append(str(path))
    subprocess.run(argv, check=True)
    return path
