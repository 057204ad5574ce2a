"""A painting job whose style image is unusable is a bad input, like a bad video: the real
preprocess CLI against Azurite exits 3 (never retried), naming the problem, and quarantines the
job with a report that names it too. A bad `style_image` option is a bad parameter: exit 3,
nothing quarantined."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.media import make_clip
from tests.style_images import png_declaring
from videostyle.commands import process_env, step_argv
from videostyle.errors import BadInputError, failure_reason
from videostyle.settings import Settings
from videostyle.steps.preprocess import quarantine_name
from videostyle.storage import Stores

pytestmark = pytest.mark.integration


@pytest.fixture
def stores(blob_env: str, tmp_path: Path) -> Stores:
    """Azurite's fresh containers, the clip uploaded as clip.mp4."""
    stores = Stores(Settings())
    stores.inputs.upload(make_clip(tmp_path / "clip.mp4", frames=5), "clip.mp4")
    return stores


def preprocess_cli(job: str, *args: str, scratch: Path) -> subprocess.CompletedProcess[str]:
    """`python -m videostyle preprocess clip.mp4 --job JOB --model painting ARGS`, as a
    launcher runs it."""
    return subprocess.run(
        step_argv("preprocess", ["clip.mp4", "--job", job, "--model", "painting", *args]),
        env=process_env({"VIDEOSTYLE_SCRATCH_DIR": str(scratch)}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def reason_of(done: subprocess.CompletedProcess[str]) -> str:
    reason = failure_reason(done.stderr.strip().splitlines()[-1])
    assert reason is not None, done.stderr[-3000:]
    return reason


@pytest.mark.parametrize(
    ("name", "payload", "problem"),
    [
        (
            "notes.jpg",
            b"A shopping list, not a painting.\n" * 20,
            r"style image 'notes.jpg' is not a JPEG, PNG or WebP image",
        ),
        ("empty.png", b"", r"style image 'empty.png' is empty \(0 bytes\)"),
        (
            "paintings/bomb.png",
            png_declaring(50000, 50000),
            r"style image 'paintings/bomb.png' declares over 67,108,864 pixels .*: refused "
            "before decoding",
        ),
        (
            "never-uploaded.jpg",
            None,
            r"style image 'never-uploaded.jpg' does not exist in az://t\d+-styles$",
        ),
    ],
    ids=["not-an-image", "empty", "50000x50000", "missing"],
)
def test_an_unusable_style_image_quarantines_the_job_and_exits_3(
    stores: Stores, tmp_path: Path, name: str, payload: bytes | None, problem: str
) -> None:
    if payload is not None:
        stores.styles.write_bytes(name, payload)

    done = preprocess_cli("job-bad-style", "--style-image", name, scratch=tmp_path / "scratch")

    assert done.returncode == BadInputError.exit_code == 3, done.stderr[-3000:]
    assert re.search(problem, reason_of(done))
    report = json.loads(stores.work.read_bytes(quarantine_name("job-bad-style")))
    assert (report["video"], report["job"]) == ("clip.mp4", "job-bad-style")
    assert re.search(problem, report["problem"])
    assert not stores.work.list("jobs"), "nothing half-written for the job"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "bad parameter style_image=None: the painting model needs a style image"),
        (["--style-image", "../escape.jpg"], "bad parameter style_image='../escape.jpg': not a"),
        (
            ["--style-image", "a.jpg", "--style", "scream"],
            "bad parameter style='scream': model painting has no such option",
        ),
    ],
    ids=["none", "unsafe-name", "built-in-style"],
)
def test_a_bad_style_image_option_is_a_bad_parameter_not_quarantined(
    stores: Stores, tmp_path: Path, args: list[str], problem: str
) -> None:
    done = preprocess_cli("job-bad-option", *args, scratch=tmp_path / "scratch")

    assert done.returncode == 3, done.stderr[-3000:]
    assert reason_of(done).startswith(problem)
    assert not stores.work.exists(quarantine_name("job-bad-option")), "the video is not to blame"
    assert not stores.work.list()


def test_a_style_image_given_as_an_option_is_read_from_the_styles_container(
    stores: Stores, tmp_path: Path
) -> None:
    """`--option style_image=NAME` is the same option as `--style-image NAME`."""
    stores.styles.write_bytes("empty.webp", b"")

    done = preprocess_cli("job-option", "--option", "style_image=empty.webp", scratch=tmp_path)

    assert done.returncode == 3
    assert reason_of(done) == "style image 'empty.webp' is empty (0 bytes)"
