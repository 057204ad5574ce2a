"""`videostyle run`s started together on one machine: each writes its own input's video, never
another's (they once shared one job and its folders, and one run published the other's clip)."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.media import decode_rgb, make_clip, stream_info
from videostyle.commands import process_env, step_argv

pytestmark = pytest.mark.integration

# Each clip its own frame count and audio, so a run that wrote another's video shows.
CLIPS = ((30, True), (21, False), (26, True), (17, False))


@pytest.mark.parametrize(("runs", "ranks"), [(2, 2), (4, 1)])
def test_runs_started_together_each_style_their_own_input(
    tmp_path: Path, runs: int, ranks: int
) -> None:
    scratch = tmp_path / "shared scratch"  # one scratch dir for all, as on one machine
    started = []
    for index, (frames, audio) in enumerate(CLIPS[:runs]):
        clip = make_clip(tmp_path / f"clip{index}.mp4", frames=frames, audio=audio)
        output = tmp_path / f"styled{index}.mp4"
        argv = step_argv(
            "run", [str(clip), str(output), "--style", "scream", "--ranks", str(ranks)]
        )
        env = process_env(
            {"VIDEOSTYLE_SCRATCH_DIR": str(scratch), "VIDEOSTYLE_MAX_UNIT_FRAMES": "4"}
        )
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append((process, clip, output, frames, audio))

    for process, clip, output, frames, audio in started:
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr.decode()[-3000:]
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        assert (report["video"], report["frames"], report["audio"]) == (clip.name, frames, audio)
        assert len(decode_rgb(output)) == frames
        assert bool(stream_info(output, "a")) == audio
    assert not any(scratch.iterdir()), "a run left scratch files behind"
