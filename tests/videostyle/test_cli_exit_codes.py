"""The real CLI's exit codes: 3 where retrying cannot help (a bad input, a bad parameter), with
the input quarantined only when the input itself is to blame."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.media import make_clip
from videostyle.commands import process_env, step_argv
from videostyle.errors import failure_reason

pytestmark = pytest.mark.integration


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Every store a local folder, as a step sees them through VIDEOSTYLE_*_URL."""
    folders = {kind: tmp_path / kind for kind in ("inputs", "work", "outputs", "styles")}
    for kind, folder in folders.items():
        folder.mkdir()
        monkeypatch.setenv(f"VIDEOSTYLE_{kind.upper()}_URL", str(folder))
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    return folders


def cli(step: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        step_argv(step, list(args)),
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def reason(done: subprocess.CompletedProcess[str]) -> str:
    """Why the step failed, from its last log line (as launchers read it)."""
    found = failure_reason(done.stderr.strip().splitlines()[-1])
    assert found is not None, done.stderr[-3000:]
    return found


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_an_input_that_is_not_a_video_exits_3_and_is_quarantined(
    stores: dict[str, Path],
) -> None:
    (stores["inputs"] / "notes.mp4").write_text("meeting notes, saved with the wrong name\n")

    done = cli("preprocess", "notes.mp4", "--job", "junk")

    assert done.returncode == 3, done.stderr[-3000:]
    assert "not a readable video" in reason(done)
    # Quarantined where operators look, naming the blob and the problem; no plan is made.
    assert files(stores["work"] / "quarantine") == ["junk.json"]
    assert not (stores["work"] / "jobs" / "junk" / "plan.json").exists()
    report = json.loads((stores["work"] / "quarantine" / "junk.json").read_text())
    assert (report["video"], report["job"]) == ("notes.mp4", "junk")
    assert report["problem"].startswith("'notes.mp4' is not a readable video")


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--crf", "99", "crf=99"), ("--style", "no-such-style", "style='no-such-style'")],
)
def test_a_bad_parameter_exits_3_and_quarantines_nothing(
    stores: dict[str, Path], tmp_path: Path, option: str, value: str, named: str
) -> None:
    make_clip(stores["inputs"] / "clip.mp4", frames=5, size=(64, 48))

    done = cli("preprocess", "clip.mp4", "--job", "bad-parameter", option, value)

    assert done.returncode == 3, done.stderr[-3000:]
    assert reason(done).startswith(f"bad parameter {named}")
    # The video is not to blame: nothing quarantined; and no plan is made.
    assert files(stores["work"] / "quarantine") == []
    assert not (stores["work"] / "jobs" / "bad-parameter" / "plan.json").exists()


def test_run_on_a_missing_input_exits_3(tmp_path: Path) -> None:
    missing, output = tmp_path / "never made.mp4", tmp_path / "out.mp4"

    done = cli("run", str(missing), str(output))

    assert done.returncode == 3, done.stderr[-3000:]
    assert str(missing) in reason(done)
    assert not output.exists()
    assert done.stdout == ""  # no report: nothing was run
