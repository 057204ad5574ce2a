"""The steps end to end on real parts: Azurite, ffmpeg, `mpirun -n 2`, the packaged weights."""

import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.media import decode_rgb, frame_times, make_clip, psnr, stream_info
from tests.processes import (
    Process,
    alive,
    freeze,
    kill_all,
    tree,
    wait_until,
)
from videostyle.commands import process_env, step_argv
from videostyle.defaults import BUILTIN_MODEL
from videostyle.media.frames import FrameEncoder
from videostyle.models.registry import load_model
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

STYLE = "starry-night"
RANKS = 2


@pytest.fixture
def pipeline_env(blob_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("VIDEOSTYLE_MAX_UNIT_FRAMES", "9")  # 50 frames → 6 units over 2 ranks
    return Stores(Settings())


def cli(step: str, *args: str, ranks: int = 1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        step_argv(step, list(args), ranks=ranks),
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_job(stores: Stores, clip: Path, job: str) -> dict[str, Any]:
    stores.inputs.upload(clip, clip.name)
    for step, args in (
        ("preprocess", [clip.name, "--style", STYLE, "--ranks", str(RANKS)]),
        ("score", []),
        ("stitch", []),
        ("publish", []),
    ):
        done = cli(step, *args, "--job", job, ranks=RANKS)
        assert done.returncode == 0, f"{step} failed:\n{done.stderr[-3000:]}"
    published: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return published


def test_video_is_styled_frame_exact_with_source_timing_and_audio(
    pipeline_env: Stores,
    sample_clip: Path,
    tmp_path: Path,
) -> None:
    stores = pipeline_env
    names = run_job(stores, sample_clip, "job-full")
    assert names["output"] == "sample clip.mp4/starry-night.mp4"
    output = stores.outputs.download(names["output"], tmp_path / "out.mp4")

    source_frames, styled_frames = decode_rgb(sample_clip), decode_rgb(output)
    assert styled_frames.shape == source_frames.shape == (50, 108, 192, 3)
    assert frame_times(output) == pytest.approx(frame_times(sample_clip), abs=1e-4)

    audio_in, audio_out = stream_info(sample_clip, "a"), stream_info(output, "a")
    assert audio_out["codec_name"] == audio_in["codec_name"] == "aac"
    assert float(audio_out["duration"]) == pytest.approx(
        float(audio_in["duration"]), abs=1001 / 24000
    )
    video_out = stream_info(output, "v")
    assert (video_out["codec_name"], video_out["pix_fmt"]) == ("h264", "yuv420p")

    # Styled: far from the input, and close to the model applied directly to the decoded
    # frames. The reference is that output in the video's own 4:2:0 format, losslessly: chroma
    # subsampling alone caps RGB PSNR near 26 dB on this dense texture, whatever the encoder.
    assert np.abs(styled_frames.astype(int) - source_frames).mean() > 25
    transform = load_model(BUILTIN_MODEL, {"style": STYLE}, device=torch.device("cpu"))
    lossless = tmp_path / "direct.mp4"
    with FrameEncoder(
        lossless,
        width=192,
        height=108,
        frame_rate=Fraction(24000, 1001),
        crf=0,
        threads=2,
        timeout=60,
    ) as encoder:
        for i in range(0, len(source_frames), 10):
            encoder.write(transform(torch.from_numpy(source_frames[i : i + 10].copy())).numpy())
    assert psnr(styled_frames, decode_rgb(lossless)) >= 30

    report = json.loads(stores.outputs.read_bytes(names["report"]))
    assert (report["frames"], report["fps"], report["units"]) == (50, "24000/1001", 6)
    assert set(report["timings"]) == {"preprocess", "score", "stitch", "publish"}
    assert {r["rank"] for r in report["timings"]["score"]["ranks"]} == {0, 1}
    assert sum(r["frames"] for r in report["timings"]["score"]["ranks"]) == 50


def test_video_without_audio_is_styled(pipeline_env: Stores, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "silent.mp4", frames=7, audio=False)
    names = run_job(pipeline_env, clip, "job-silent")
    output = pipeline_env.outputs.download(names["output"], tmp_path / "out.mp4")
    assert len(decode_rgb(output)) == 7
    assert stream_info(output, "a") == {}


def etag(stores: Stores, unit: str) -> str:
    return str(stores.work.fs.info(stores.work.uri(unit))["etag"])


def test_killed_scoring_resumes_redoing_only_missing_units(
    pipeline_env: Stores,
    sample_clip: Path,
    tmp_path: Path,
) -> None:
    stores = pipeline_env
    stores.inputs.upload(sample_clip, sample_clip.name)
    assert (
        cli(
            "preprocess",
            sample_clip.name,
            "--job",
            "job-resume",
            "--style",
            STYLE,
            "--ranks",
            str(RANKS),
        ).returncode
        == 0
    )
    plan = load_plan(stores.work, "job-resume")
    units = [plan.unit_name(u) for u in plan.units]

    def finished() -> list[str]:
        return [u for u in units if stores.work.exists(u)]

    scoring = subprocess.Popen(
        step_argv("score", ["--job", "job-resume"], ranks=RANKS),
        env=process_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Not raced against the scoring: once a unit exists, the whole world (mpirun, its proxy,
    # the ranks, their ffmpegs) is stopped, then killed at once; hydra gives the proxy and each
    # rank a session of its own, so mpirun's process group alone would miss them.
    world: list[Process] = []
    try:
        wait_until(lambda: finished() or scoring.poll() is not None, "the first unit")
        assert scoring.poll() is None, "scoring ended before its first unit was seen"
        world = freeze(scoring.pid)
        stopped_with = finished()
        kill_all(world)  # a preempted node: no clean shutdown
        scoring.wait()
        wait_until(lambda: not any(map(alive, world)), "every process of the world gone")
    except BaseException:
        kill_all([*world, *tree(scoring.pid)])
        raise
    survivors = {u: etag(stores, u) for u in finished()}
    assert set(stopped_with) <= survivors.keys()
    assert 0 < len(survivors) < len(units), "scoring finished before it could be stopped"

    rerun = cli("score", "--job", "job-resume", ranks=RANKS)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert finished() == units
    for unit, before in survivors.items():  # finished units were not rewritten
        assert etag(stores, unit) == before
    timings = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    assert sum(r["skipped"] for r in timings["ranks"]) == len(survivors)
    assert sum(r["scored"] for r in timings["ranks"]) == len(units) - len(survivors)

    assert cli("stitch", "--job", "job-resume").returncode == 0
    resumed = stores.work.download(plan.stitched_name, tmp_path / "resumed.mp4")
    # The same job scored in one go: identical frames.
    names = run_job(stores, sample_clip, "job-straight")
    straight = stores.outputs.download(names["output"], tmp_path / "straight.mp4")
    assert np.array_equal(decode_rgb(resumed), decode_rgb(straight))
