"""The benchmark's inputs: generated clips, a stand-in TransformerNet checkpoint and a style
image."""

import subprocess
from pathlib import Path

import torch

from videostyle.models.transformer_net import TransformerNet

RATE = "24000/1001"


def make_clip(path: Path, *, frames: int, width: int = 640, height: int = 360) -> Path:
    """A moving test pattern with a tone, in H.264 with AAC audio, as a camera file would be."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={RATE},trim=end_frame={frames}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:a",
            "aac",
            "-shortest",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "48",
            str(path),
        ],
        check=True,
    )
    return path


def stand_in_checkpoint(path: Path, seed: int = 0) -> Path:
    """A TransformerNet .pth with seeded random weights, for want of a downloadable trained one.

    The last layer is scaled to span the pixel range, so frames come out as dense texture (as
    a trained style's do) rather than nearly black: the encoders get a realistic load.
    """
    torch.manual_seed(seed)
    state = TransformerNet().state_dict()
    state["deconv3.conv2d.weight"] = state["deconv3.conv2d.weight"] * 200
    state["deconv3.conv2d.bias"] = torch.full((3,), 128.0)
    torch.save(state, path)
    return path


def save_style_image(path: Path, photo: str = "coffee") -> Path:
    """scikit-image's photo `photo` (400x600) as a style image, in the format of `path`'s
    suffix; kept if it is there already."""
    if not path.exists():
        from PIL import Image
        from skimage import data

        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(getattr(data, photo)()).save(path, quality=90)
    return path
