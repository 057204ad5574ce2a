"""The process DAG run whole by `airflow dags test`, on real parts: Azurite, ffmpeg, mpirun."""

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from scripts.azurite import DEV_ACCOUNT_KEY
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

    assert stores.outputs.list() == [
        "sample clip.mp4/scream.json",
        "sample clip.mp4/scream.mp4",
        "sample clip.mp4/scream.png",
    ]
    output = stores.outputs.download("sample clip.mp4/scream.mp4", tmp_path / "out.mp4")
    assert len(decode_rgb(output)) == 50
    assert frame_times(output) == pytest.approx(frame_times(sample_clip), abs=1e-4)
    assert stream_info(output, "a")["codec_name"] == "aac"
    report = json.loads(stores.outputs.read_bytes("sample clip.mp4/scream.json"))
    assert (report["frames"], report["style"], report["units"]) == (50, "scream", 4)
    assert report["job"].startswith("manual__")
    assert [r["rank"] for r in report["timings"]["score"]["ranks"]] == [0, 1]

    # No credential anywhere a person or a process could read it after the run.
    places = {"dags test output": done.stdout + done.stderr}
    places |= {
        str(p): p.read_text(errors="replace") for p in Path(env["AIRFLOW_HOME"]).rglob("*.log")
    }
    places["metadata database"] = database_text(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    for store in (stores.work, stores.outputs):
        places |= {
            store.uri(n): store.read_bytes(n).decode() for n in store.list() if n.endswith(".json")
        }
    leaks = {
        place: found
        for place, text in places.items()
        if (found := credentials_in(without_published_links(text)))
    }
    assert not leaks


def without_published_links(text: str) -> str:
    """`text` less the publish tasks' links: by design, each a read-only SAS of one blob
    (sp=r, sr=b), kept as its task's link XComs (the suite's database holds other tests' too)."""

    def unless_published(url: re.Match[str]) -> str:
        query = parse_qs(urlsplit(url[0]).query)
        return "" if (query.get("sp"), query.get("sr")) == (["r"], ["b"]) else url[0]

    return re.sub(r"https?://[^\s\"']+", unless_published, text)


def credentials_in(text: str) -> list[str]:
    """Storage credentials in `text`: the account key, or any SAS signature."""
    found = [DEV_ACCOUNT_KEY] if DEV_ACCOUNT_KEY in text else []
    return found + re.findall(r"(?:AccountKey=|SharedAccessSignature=|[?&]sig=)[^;&\s\"'*]+", text)


def database_text(path: Path) -> str:
    """Every text value of every table: XComs, rendered templates, run confs, task logs."""
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            str(value)
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from sqlite)
            for value in row
            if isinstance(value, str | bytes)
        )
