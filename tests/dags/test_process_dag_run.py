"""The process DAG run whole by `airflow dags test`, on real parts: Azurite, ffmpeg, mpirun."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import decode_rgb, frame_times, stream_info
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def test_dags_test_styles_an_uploaded_video_into_the_outputs_container(
    airflow_env: dict[str, str],
    sample_clip: Path,
    tmp_path: Path,
) -> None:
    stores = Stores(Settings())
    stores.inputs.upload(sample_clip, sample_clip.name)
    conf = {"video": sample_clip.name, "style": "scream", "ranks": 2}
    env = {
        **airflow_env,
        "VIDEOSTYLE_SCRATCH_DIR": str(tmp_path / "scratch"),
        "VIDEOSTYLE_MAX_UNIT_FRAMES": "20",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "test",
            "videostyle_process",
            "-c",
            json.dumps(conf),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    assert stores.outputs.list() == ["sample clip.mp4/scream.json", "sample clip.mp4/scream.mp4"]
    output = stores.outputs.download("sample clip.mp4/scream.mp4", tmp_path / "out.mp4")
    assert len(decode_rgb(output)) == 50
    assert frame_times(output) == pytest.approx(frame_times(sample_clip), abs=1e-4)
    assert stream_info(output, "a")["codec_name"] == "aac"
    report = json.loads(stores.outputs.read_bytes("sample clip.mp4/scream.json"))
    assert (report["frames"], report["style"], report["units"]) == (50, "scream", 4)
    assert report["job"].startswith("manual__")
    assert [r["rank"] for r in report["timings"]["score"]["ranks"]] == [0, 1]
