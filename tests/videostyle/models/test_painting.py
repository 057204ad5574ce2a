"""The painting model behind the seam: its options, its name for the look, what it prepares once
per job (the style vector, with the image's name and SHA-256) and how `run` and the command
line hand it a style image. End to end: tests/videostyle/test_painting_integration.py."""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.media import decode_rgb, make_clip
from tests.style_images import save_photo
from videostyle.cli import build_parser, model_and_options
from videostyle.errors import BadInputError, BadParameterError
from videostyle.media.ffmpeg import probe
from videostyle.models import painting
from videostyle.models.base import JobContext
from videostyle.models.magenta_arbitrary import STYLE_DIM
from videostyle.models.registry import get_model, job_options, load_model, output_name
from videostyle.pipeline import local_style_image
from videostyle.settings import Settings
from videostyle.storage import Stores

FRAMES = 9


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, r"style_image=None: the painting model needs a style image"),
        ({"style_image": ""}, r"style_image='': the painting model needs a style image"),
        ({"style_image": 7}, r"style_image=7: the painting model needs a style image"),
        ({"style_image": "/etc/passwd"}, r"style_image='/etc/passwd': not a blob name"),
        ({"style_image": "a/../../b.jpg"}, r"style_image='a/../../b.jpg': not a blob name"),
        ({"style_image": "a.jpg", "strength": 1.5}, r"strength=1.5: outside \[0, 1\]"),
        ({"style_image": "a.jpg", "style": "scream"}, r"style='scream': model painting has no"),
    ],
)
def test_a_bad_option_is_a_bad_parameter(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadParameterError, match=problem):
        job_options("painting", options)


@pytest.mark.parametrize(
    ("options", "look"),
    [
        ({"style_image": "starry.jpg"}, "starry"),
        ({"style_image": "paintings/van gogh/starry.night.png"}, "starry.night"),
        ({"style_image": "starry.webp", "strength": 0.5}, "starry-s50"),
        ({"style_image": "starry", "strength": 0}, "starry-s0"),
    ],
)
def test_the_look_is_named_after_the_style_images_stem(options: dict[str, Any], look: str) -> None:
    assert output_name("painting", job_options("painting", options)) == look


def test_the_command_line_gives_the_style_image_as_the_option() -> None:
    def parsed(*argv: str) -> tuple[str, dict[str, Any]]:
        return model_and_options(build_parser().parse_args(argv))

    pre = ("preprocess", "clip.mp4", "--job", "j", "--model", "painting")
    assert parsed(*pre, "--style-image", "starry.jpg", "--strength", "0.5") == (
        "painting",
        {"style_image": "starry.jpg", "strength": 0.5},
    )
    assert parsed(*pre, "--option", "style_image=starry.jpg") == (
        "painting",
        {"style_image": "starry.jpg"},
    )
    run = ("run", "in.mp4", "out.mp4", "--model", "painting")
    assert parsed(*run, "--style-image", "/pics/starry.jpg") == (
        "painting",
        {"style_image": "/pics/starry.jpg"},
    )
    with pytest.raises(BadParameterError, match="style_image: given twice"):
        parsed(*pre, "--style-image", "a.jpg", "--option", "style_image=b.jpg")


def test_run_copies_a_local_style_image_into_its_styles_folder(tmp_path: Path) -> None:
    image = save_photo(tmp_path / "pics" / "starry.jpg", "coffee")
    styles = tmp_path / "run" / "styles"

    options = local_style_image({"style_image": str(image), "strength": 0.5}, styles)

    assert options == {"style_image": "starry.jpg", "strength": 0.5}
    assert (styles / "starry.jpg").read_bytes() == image.read_bytes()
    assert local_style_image({"style": "scream"}, styles) == {"style": "scream"}
    with pytest.raises(BadInputError, match=r"style image .*nowhere.jpg does not exist"):
        local_style_image({"style_image": str(tmp_path / "nowhere.jpg")}, styles)
    with pytest.raises(BadInputError, match="is not a file"):
        local_style_image({"style_image": str(tmp_path)}, styles)


@pytest.fixture
def job(tmp_path: Path) -> JobContext:
    """A job on a 9-frame clip, its styles store a local folder holding coffee.jpg."""
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        styles_url=str(tmp_path / "styles"),
        scratch_dir=tmp_path / "scratch",
    )
    save_photo(tmp_path / "styles" / "coffee.jpg", "coffee")
    clip = make_clip(tmp_path / "clip.mp4", frames=FRAMES, audio=False)
    return JobContext(
        job_id="j",
        video="clip.mp4",
        source=clip,
        info=probe(clip, timeout=60),
        scratch=tmp_path / "scratch",
        settings=settings,
        stores=Stores(settings),
    )


def test_the_middle_frame_is_decoded_exactly(job: JobContext) -> None:
    frames = decode_rgb(job.source)
    for index in (0, FRAMES // 2, FRAMES - 1):
        frame = painting._decode_frame(job.source, job.info, index, timeout=60)
        assert np.array_equal(frame, frames[index]), index


def test_a_frame_of_a_late_starting_stream_is_decoded_exactly(tmp_path: Path) -> None:
    # MPEG-TS starts its clock at 1.4 s, and ffmpeg's seek counts from the file's start.
    clip = make_clip(tmp_path / "clip.ts", frames=FRAMES, audio=False)
    info = probe(clip, timeout=60)
    assert info.frame_times[0] > 1.0
    frames = decode_rgb(clip)
    for index in (0, FRAMES // 2, FRAMES - 1):
        frame = painting._decode_frame(clip, info, index, timeout=60)
        assert np.array_equal(frame, frames[index]), index


def test_prepare_stores_the_vector_with_the_images_name_and_digest(job: JobContext) -> None:
    model = get_model("painting")
    full = model.prepare(job_options("painting", {"style_image": "coffee.jpg"}), job)
    half = model.prepare(
        job_options("painting", {"style_image": "coffee.jpg", "strength": 0.5}), job
    )

    assert isinstance(full, dict)
    assert isinstance(half, dict)
    digest = hashlib.sha256(job.stores.styles.read_bytes("coffee.jpg")).hexdigest()
    assert model.report({}, full) == {
        "style_image": "coffee.jpg",
        "style_image_sha256": digest,
        "style_image_size": [600, 400],
        "content_frame": None,
    }
    assert model.report({}, half)["content_frame"] == FRAMES // 2
    full_vector, half_vector = (torch.tensor(p["style_vector"]) for p in (full, half))
    assert full_vector.shape == half_vector.shape == (STYLE_DIM,)
    # Softened towards the content's own vector: clearly not the style's.
    assert (full_vector - half_vector).abs().max() > 0.1


def test_a_loaded_model_paints_with_the_stored_vector(job: JobContext) -> None:
    options = job_options("painting", {"style_image": "coffee.jpg"})
    prepared = get_model("painting").prepare(options, job)
    # 190x106: neither side a multiple of 4, so the frames are padded for the network
    frames = torch.from_numpy(decode_rgb(job.source)[:2, :106, :190].copy())

    model = load_model("painting", options, device=torch.device("cpu"), prepared=prepared)
    painted = model(frames)

    assert painted.shape == frames.shape
    assert painted.dtype == torch.uint8
    assert (painted.int() - frames.int()).abs().float().mean() > 40
    with pytest.raises(TypeError, match="loads a prepared style vector"):
        load_model("painting", options, device=torch.device("cpu"))
