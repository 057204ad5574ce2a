"""Output unchanged by the speed work: PSNR of a published video against the fp32 model.

The reference is the eager fp32 model (registry.load_model) applied to the decoded source frames,
stored losslessly in the video's own 4:2:0 format (chroma subsampling alone caps RGB PSNR near
26 dB on styled texture, whatever the encoder), as the foundation's integration test does.
"""

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from videostyle.defaults import BUILTIN_MODEL
from videostyle.media.ffmpeg import probe
from videostyle.media.frames import FrameEncoder
from videostyle.models.registry import load_model


def decode(path: Path) -> npt.NDArray[np.uint8]:
    info = probe(path, timeout=600)
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0"]
    raw = subprocess.run(
        [*argv, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def fp32_reference(source: Path, style: str, workdir: Path) -> Path:
    """The built-in model's eager fp32 output on every frame of `source`, losslessly encoded."""
    info = probe(source, timeout=600)
    transform = load_model(BUILTIN_MODEL, {"style": style}, device=torch.device("cpu"))
    lossless = workdir / "fp32-lossless.mp4"
    with FrameEncoder(
        lossless,
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate,
        crf=0,
        threads=1,
        timeout=600,
    ) as encoder:
        for frame in decode(source):
            encoder.write(transform(torch.from_numpy(frame[None].copy())).numpy())
    return lossless


def psnr_between(video: Path, reference: Path) -> float:
    return psnr(decode(video), decode(reference))
