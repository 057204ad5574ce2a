"""Anchor (a): the reference architecture's way of styling a video, rebuilt as a baseline.

Azure's "batch scoring for deep learning" reference splits the video into JPEG files with
ffmpeg, loads each file and styles it alone (batch of one, fp32, pytorch/examples'
fast_neural_style TransformerNet under torch.no_grad), saves each result as a JPEG, and
stitches the JPEGs back with ffmpeg (libx264, default preset), the audio copied. It runs here in
one process with torch's default threads (all cores), on the same network and weights as ours.

    python -m bench.reference_baseline CLIP OUTPUT CHECKPOINT [--crf N]
"""

import argparse
import json
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from videostyle.media.ffmpeg import probe
from videostyle.models.transformer_net import TransformerNet

JPEG_QUALITY = 95  # PIL's save; ffmpeg's extraction at -q:v 2, its best usual setting


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def style_video(clip: Path, output: Path, checkpoint: Path, *, crf: int) -> dict[str, float]:
    """Style `clip` into `output` the reference's way; seconds per stage."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        frames, styled, audio = Path(tmp, "frames"), Path(tmp, "styled"), Path(tmp, "audio.m4a")
        frames.mkdir()
        styled.mkdir()
        start = time.perf_counter()
        _ffmpeg("-i", str(clip), "-q:v", "2", str(frames / "%06d.jpg"))
        _ffmpeg("-i", str(clip), "-vn", "-c:a", "copy", str(audio))
        seconds["split"] = time.perf_counter() - start

        start = time.perf_counter()
        net = TransformerNet()
        net.load_state_dict(torch.load(checkpoint, weights_only=True))
        net.eval()
        with torch.no_grad():
            for path in sorted(frames.glob("*.jpg")):
                image = np.asarray(Image.open(path).convert("RGB"))
                x = torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0)
                y = net(x)[0].clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
                Image.fromarray(y).save(styled / path.name, quality=JPEG_QUALITY)
        seconds["style"] = time.perf_counter() - start

        start = time.perf_counter()
        rate = probe(clip, timeout=600).frame_rate
        _ffmpeg(
            "-framerate",
            str(Fraction(rate)),
            "-i",
            str(styled / "%06d.jpg"),
            "-i",
            str(audio),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            str(crf),
            "-c:a",
            "copy",
            str(output),
        )
        seconds["stitch"] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clip", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--crf", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(style_video(args.clip, args.output, args.checkpoint, crf=args.crf)))


if __name__ == "__main__":
    main()
