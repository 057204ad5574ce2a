"""The benchmark's inputs: generated clips, a stand-in TransformerNet checkpoint and a style
image."""

from pathlib import Path

import torch

from scripts.clips import make_clip
from videostyle.models.transformer_net import TransformerNet

CAMERA_SIZE = (640, 360)
CAMERA_GOP = 48  # a keyframe every 2 s


def camera_clip(path: Path, *, frames: int, size: tuple[int, int] = CAMERA_SIZE) -> Path:
    """A clip as a camera file would be: scripts.clips' moving test pattern with a tone, in
    H.264 with AAC audio, 640x360 unless `size` says otherwise, a keyframe every 2 s."""
    return make_clip(path, frames=frames, size=size, gop=CAMERA_GOP)


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
