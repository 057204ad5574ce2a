"""The blob service restarts while ranks are uploading: the SDK's retry policy (exponential
backoff) carries the step through, and the job completes with nothing lost."""

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.conftest import azurite_connection_string, free_port, start_azurite
from tests.media import decode_rgb
from videostyle.launch import step_argv, step_env
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration


@pytest.fixture
def restartable_azurite(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A private Azurite (port, data folder) the test may stop and start again."""
    port, location = free_port(), tmp_path / "azurite"
    proc = start_azurite(port, location)
    yield port, location
    proc.terminate()
    proc.wait(timeout=10)


def test_a_blob_service_restart_mid_scoring_is_ridden_out(
    restartable_azurite: tuple[int, Path],
    sample_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, location = restartable_azurite
    connection = azurite_connection_string(port)
    service = BlobServiceClient.from_connection_string(connection)
    for container in ("vin", "vwork", "vout"):
        service.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    for store, container in (("INPUTS", "vin"), ("WORK", "vwork"), ("OUTPUTS", "vout")):
        monkeypatch.setenv(f"VIDEOSTYLE_{store}_URL", f"az://{container}")
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("VIDEOSTYLE_MAX_UNIT_FRAMES", "5")
    stores = Stores(Settings())
    stores.inputs.upload(sample_clip, "clip.mp4")
    prep = step_argv("preprocess", ["--job", "j", "--style", "scream", "--", "clip.mp4"])
    subprocess.run(prep, env=step_env(), check=True, capture_output=True)
    units = [load_plan(stores.work, "j").unit_name(u) for u in load_plan(stores.work, "j").units]

    scoring = subprocess.Popen(
        step_argv("score", ["--job", "j"], ranks=2),
        env=step_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not any(map(stores.work.exists, units)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The service goes away while ranks are mid-upload, and comes back a few seconds later.
    assert scoring.poll() is None
    assert not all(map(stores.work.exists, units))
    subprocess.run(["pkill", "-f", f"--blobPort {port} "], check=False)
    time.sleep(3)
    restarted = start_azurite(port, location)
    try:
        _, stderr = scoring.communicate(timeout=300)
        assert scoring.returncode == 0, stderr.decode()[-3000:]
        assert all(map(stores.work.exists, units))
        stitch = step_argv("stitch", ["--job", "j"])
        subprocess.run(stitch, env=step_env(), check=True, capture_output=True)
        stitched = stores.work.download(
            load_plan(stores.work, "j").stitched_name, tmp_path / "out.mp4"
        )
        assert len(decode_rgb(stitched)) == 50
    finally:
        restarted.terminate()
        restarted.wait(timeout=10)
