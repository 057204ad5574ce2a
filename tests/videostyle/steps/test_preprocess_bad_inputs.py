"""Unusable inputs fail fast with an error naming the problem, and are quarantined."""

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.media import frame_pts, make_clip
from videostyle.commands import process_env, step_argv
from videostyle.errors import BadInputError, BadParameterError, failure_reason
from videostyle.plan import load_timestamps
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess, quarantine_name
from videostyle.storage import Stores


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
    )
    return Stores(settings)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def truncated(folder: Path) -> Path:
    """The index up front (faststart), the frames cut off halfway: a probe alone looks fine."""
    whole = folder / "whole.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=2",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
        str(whole),
    )
    cut = folder / "truncated.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    return cut


def corrupted(folder: Path) -> Path:
    """Garbage over the middle of the frame data: every packet is there, not every frame decodes."""
    path = truncated(folder).with_name("whole.mp4")
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 2000] = b"\xff" * 2000
    path.write_bytes(data)
    return path


def variable_rate(folder: Path) -> Path:
    """A phone-like recording: 30 fps that drops to 15 fps halfway."""
    path = folder / "vfr.mkv"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=30:duration=2",
        "-vf",
        "select='lt(t,1)+not(mod(n,2))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        str(path),
    )
    return path


def odd_sides(folder: Path) -> Path:
    path = folder / "odd.mkv"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=0.2",
        "-vf",
        "scale=65:49",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
        str(path),
    )
    return path


def shared_timestamp(folder: Path) -> Path:
    """Two frames at one time (Matroska allows it): which of them a time selects is undefined."""
    path = folder / "twice.mkv"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25,trim=end_frame=8,setpts='if(eq(N,4),PREV_OUTPTS,PTS)'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-bf",
        "0",
        str(path),
    )
    return path


def index_at_end_cut(folder: Path) -> Path:
    whole = make_clip(folder / "whole.mp4", frames=10)
    cut = folder / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut


def empty(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def not_media(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("This is a shopping list, not a video.\n" * 50)
    return path


def audio_only(folder: Path) -> Path:
    path = folder / "song.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(path))
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (truncated, r"'uploads/truncated.mp4' is truncated: its index lists 50 frames, \d+ are"),
        (corrupted, r"'uploads/whole.mp4' is corrupt or truncated: \d+ of its 50 frames decode"),
        (index_at_end_cut, "not a readable video"),
        (
            shared_timestamp,
            r"frames at the same time as the one before \(1, the first at 0.120 s\)",
        ),
        (empty, r"is empty \(0 bytes\)"),
        (not_media, "not a readable video"),
        (audio_only, "has no video stream"),
    ],
)
def test_unusable_input_is_refused_and_quarantined(
    stores: Stores,
    tmp_path: Path,
    make: Callable[[Path], Path],
    problem: str,
) -> None:
    source = make(tmp_path)
    stores.inputs.upload(source, f"uploads/{source.name}")

    with pytest.raises(BadInputError, match=problem):
        preprocess(
            stores,
            stores_settings(stores),
            video=f"uploads/{source.name}",
            job_id="j1",
            model="multistyle26",
            options={"style": "scream", "strength": 1.0},
            crf=16,
            ranks=2,
        )

    report = json.loads(stores.work.read_bytes(quarantine_name("j1")))
    assert report["video"] == f"uploads/{source.name}"
    assert re.search(problem, report["problem"])
    assert report["job"] == "j1"
    assert not stores.work.list("jobs"), "nothing half-written for the job"


def interlaced(folder: Path) -> Path:
    return make_clip(folder / "broadcast.mp4", frames=6, size=(64, 48), interlaced=True)


@pytest.mark.parametrize(
    ("make", "planned"),
    [
        (variable_rate, {"frame_count": 45, "pix_fmt": "yuv420p", "deinterlace": False}),
        (odd_sides, {"width": 65, "height": 49, "pix_fmt": "yuv444p", "deinterlace": False}),
        (interlaced, {"frame_count": 6, "pix_fmt": "yuv420p", "deinterlace": True}),
    ],
)
def test_variable_rate_odd_sides_and_interlacing_are_planned_not_refused(
    stores: Stores, tmp_path: Path, make: Callable[[Path], Path], planned: dict[str, Any]
) -> None:
    source = make(tmp_path)
    stores.inputs.upload(source, source.name)

    plan = preprocess(
        stores,
        stores_settings(stores),
        video=source.name,
        job_id="j1",
        model="multistyle26",
        options={"style": "scream", "strength": 1.0},
        crf=16,
        ranks=2,
    )

    assert {key: getattr(plan, key) for key in planned} == planned
    time_base, pts = load_timestamps(stores.work, plan)
    assert [p * time_base for p in pts] == frame_pts(source)  # every frame's time, exactly
    assert not stores.work.exists(quarantine_name("j1"))


def stores_settings(stores: Stores) -> Settings:
    root = Path(stores.work.root).parent
    return Settings(
        inputs_url=stores.inputs.url,
        work_url=stores.work.url,
        outputs_url=stores.outputs.url,
        scratch_dir=root / "scratch",
        max_pixels=320 * 240,
        max_duration_s=5.0,
        max_input_bytes=2_000_000,
    )


@pytest.mark.parametrize(
    ("lavfi", "problem"),
    [
        ("testsrc2=size=400x240:rate=25:duration=1", r"400x240, over the 76800-pixel limit"),
        ("testsrc2=size=64x48:rate=25:duration=6", r"lasts 6 s, over the 5 s limit"),
    ],
)
def test_input_over_a_limit_is_refused(
    stores: Stores,
    tmp_path: Path,
    lavfi: str,
    problem: str,
) -> None:
    _ffmpeg("-f", "lavfi", "-i", lavfi, "-c:v", "libx264", str(tmp_path / "big.mp4"))
    stores.inputs.upload(tmp_path / "big.mp4", "big.mp4")
    with pytest.raises(BadInputError, match=problem):
        preprocess(
            stores,
            stores_settings(stores),
            video="big.mp4",
            job_id="j2",
            model="multistyle26",
            options={"style": "scream", "strength": 1.0},
            crf=16,
            ranks=1,
        )
    assert stores.work.exists(quarantine_name("j2"))


def test_input_over_the_size_limit_is_refused_before_download(
    stores: Stores,
    tmp_path: Path,
) -> None:
    (tmp_path / "huge.mp4").write_bytes(b"\0" * 2_000_001)
    stores.inputs.upload(tmp_path / "huge.mp4", "huge.mp4")
    with pytest.raises(BadInputError, match="2000001 bytes, over the 2000000 limit"):
        preprocess(
            stores,
            stores_settings(stores),
            video="huge.mp4",
            job_id="j3",
            model="multistyle26",
            options={"style": "scream", "strength": 1.0},
            crf=16,
            ranks=1,
        )


@pytest.mark.parametrize("name", ["../escape.mp4", "a/../../b.mp4", "/abs.mp4", "a//b.mp4"])
def test_a_blob_name_never_chooses_a_path(stores: Stores, name: str) -> None:
    with pytest.raises(BadInputError, match="unsafe blob name"):
        preprocess(
            stores,
            stores_settings(stores),
            video=name,
            job_id="j4",
            model="multistyle26",
            options={"style": "scream", "strength": 1.0},
            crf=16,
            ranks=1,
        )


def test_a_missing_input_is_a_bad_input(stores: Stores) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        preprocess(
            stores,
            stores_settings(stores),
            video="never-uploaded.mp4",
            job_id="j5",
            model="multistyle26",
            options={"style": "scream", "strength": 1.0},
            crf=16,
            ranks=1,
        )


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            {"options": {"style": "mona-lisa"}},
            "bad parameter style='mona-lisa': unknown style 'mona-lisa'; known: pastel, ",
        ),
        ({"options": {"strength": 2.0}}, "bad parameter strength=2.0: outside [0, 1]"),
        ({"crf": 60}, "bad parameter crf=60: outside H.264's 0..51"),
        (
            {
                "model": "checkpoint",
                "options": {"checkpoint": "az://models/mine.pth", "style": "scream"},
            },
            "bad parameter style='scream': checkpoint az://models/mine.pth has its own style",
        ),
    ],
    ids=["unknown-style", "strength", "crf", "style-with-checkpoint"],
)
def test_a_bad_parameter_is_named_as_such_and_the_video_is_not_quarantined(
    stores: Stores, tmp_path: Path, job: dict[str, Any], message: str
) -> None:
    stores.inputs.upload(make_clip(tmp_path / "clip.mp4", frames=5), "clip.mp4")
    options: dict[str, Any] = {"model": "multistyle26", "crf": 16} | job
    options["options"] = {"style": "scream", "strength": 1.0} | job.get("options", {})
    with pytest.raises(BadParameterError) as caught:
        preprocess(
            stores, stores_settings(stores), video="clip.mp4", job_id="j6", ranks=1, **options
        )
    assert str(caught.value).startswith(message)
    assert caught.value.exit_code == 3  # never retried
    assert not stores.work.exists(quarantine_name("j6")), "the video is not to blame"
    assert not stores.work.list("jobs")


def test_the_cli_names_an_unknown_style_as_a_bad_parameter_and_exits_3(
    blob_env: str, tmp_path: Path
) -> None:
    """The real CLI against Azurite, as a launcher runs it."""
    stores = Stores(Settings())
    stores.inputs.upload(make_clip(tmp_path / "clip.mp4", frames=5), "clip.mp4")
    done = subprocess.run(
        step_argv("preprocess", ["clip.mp4", "--job", "j7", "--style", "mona-lisa"]),
        env=process_env({"VIDEOSTYLE_SCRATCH_DIR": str(tmp_path / "scratch")}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert " videostyle ERROR preprocess failed: bad parameter style='mona-lisa': " in last
    reason = failure_reason(last)
    assert reason is not None
    assert reason.startswith("bad parameter style='mona-lisa': unknown style 'mona-lisa'; known:")
    assert not stores.work.exists(quarantine_name("j7"))
