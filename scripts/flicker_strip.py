"""The README's strip: the same crop of consecutive frames, styled frame by frame (top row) and
in the temporal mode (bottom row), side by side.

    .venv/bin/python -m bench.flicker WORK      # styles the footage both ways into WORK
    .venv/bin/python -m scripts.flicker_strip WORK/per_frame.mp4 WORK/temporal.mp4 \
        docs/temporal-strip.jpg
"""

import argparse
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from videostyle.media.ffmpeg import probe

RGB = npt.NDArray[np.uint8]
LABEL_HEIGHT = 18


def frames(video: Path, first: int, count: int) -> RGB:
    """Frames first .. first + count - 1 of `video`, RGB."""
    info = probe(video, timeout=600, decode=False)
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-map", "0:v:0"]
    argv += [
        "-vf",
        f"select=between(n\\,{first}\\,{first + count - 1})",
        "-fps_mode",
        "passthrough",
    ]
    argv += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(argv, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)


def strip(rows: dict[str, RGB], box: tuple[int, int, int, int]) -> Image.Image:
    """Each row's frames cropped to `box` (left, top, width, height), side by side, labelled."""
    left, top, width, height = box
    count = min(len(f) for f in rows.values())
    sheet = Image.new("RGB", (count * width, len(rows) * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, row) in enumerate(rows.items()):
        y = r * (height + LABEL_HEIGHT)
        draw.text((4, y + 3), label, fill="black")
        for k in range(count):
            crop = row[k, top : top + height, left : left + width]
            sheet.paste(Image.fromarray(np.ascontiguousarray(crop)), (k * width, y + LABEL_HEIGHT))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("per_frame", type=Path)
    parser.add_argument("temporal", type=Path)
    parser.add_argument("output", type=Path, help="a .jpg or .png")
    parser.add_argument("--first", type=int, default=60, help="the first frame shown")
    parser.add_argument("--count", type=int, default=5, help="consecutive frames shown")
    parser.add_argument("--box", default="200,100,240,180", help="the crop: left,top,width,height")
    args = parser.parse_args()
    box = tuple(int(v) for v in args.box.split(","))
    if len(box) != 4:
        parser.error("--box is left,top,width,height")
    rows = {
        f"per-frame, frames {args.first}..{args.first + args.count - 1}": frames(
            args.per_frame, args.first, args.count
        ),
        "temporal (--temporal)": frames(args.temporal, args.first, args.count),
    }
    strip(rows, (box[0], box[1], box[2], box[3])).save(args.output, quality=85)
    print(f"{args.output}: {args.output.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
