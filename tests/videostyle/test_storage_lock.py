"""BlobStore.lock: one holder at a time across processes, and a holder that dies frees it."""

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from videostyle.commands import process_env
from videostyle.settings import Settings
from videostyle.storage import BlobStore

pytestmark = pytest.mark.integration

# A process that takes the lock, says so, and holds it until it is killed.
HOLDER = """
import sys, threading
from videostyle import storage
from videostyle.settings import Settings
storage.LEASE_S = 15  # Blob Storage's shortest lease: the test waits less for it to lapse
store = storage.BlobStore(sys.argv[1], Settings())
with store.lock("locks/publish/clip", holder="job dying"):
    print("held", flush=True)
    threading.Event().wait()
"""


def start_holder(store_url: str) -> subprocess.Popen[bytes]:
    """A process holding the lock, once it says it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store_url], env=process_env(), stdout=subprocess.PIPE
    )
    assert holder.stdout is not None
    with holder.stdout:  # it says nothing more
        assert holder.stdout.readline() == b"held\n"
    return holder


@pytest.fixture(params=["local folder", "Azurite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local folder":
        return str(tmp_path / "work")
    prefix = request.getfixturevalue("blob_env")
    return f"az://{prefix}-work"


def test_a_lock_held_by_a_process_that_dies_is_freed(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    holder = start_holder(store_url)
    try:
        os.kill(holder.pid, signal.SIGKILL)  # no release: the lock must free itself
        assert holder.wait(timeout=60) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()

    store = BlobStore(store_url, Settings())
    with (
        caplog.at_level(logging.INFO, logger="videostyle.storage"),
        store.lock("locks/publish/clip", holder="job next"),
    ):
        taken = True
    assert taken
    waits = [r.getMessage() for r in caplog.records if "waits for the lock" in r.getMessage()]
    if store_url.startswith("az://"):
        assert len(waits) == 1  # the dead holder's lease had to lapse first
    else:
        assert waits == []  # a dead process's flock goes with it at once


CONTENDER = """
import logging, sys
from videostyle.storage import BlobStore
from videostyle.settings import Settings
logging.basicConfig(level=logging.INFO, format="%(message)s")
logging.getLogger("azure").setLevel(logging.WARNING)
with BlobStore(sys.argv[1], Settings()).lock("locks/publish/clip", holder="job contender"):
    print("taken", flush=True)
"""


def test_a_live_holder_keeps_the_lock_until_it_leaves_its_block(store_url: str) -> None:
    holder = start_holder(store_url)
    try:
        contender = subprocess.Popen(
            [sys.executable, "-c", CONTENDER, store_url],
            env=process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert contender.stderr is not None
        said = contender.stderr.readline().decode()  # its first word: it has to wait
        assert said.startswith("job contender waits for the lock"), said
        holder.kill()
        out, err = contender.communicate(timeout=120)
        assert out == b"taken\n", err.decode()
    finally:
        if holder.poll() is None:
            holder.kill()
