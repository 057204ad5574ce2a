"""The blob service goes away while ranks are scoring, and comes back: the SDK's retry policy
(exponential backoff) carries the step through, and the job completes with nothing lost.

The outage is made real and checked from both sides: the test's own Azurite is stopped by its
process handle (the port then refuses connections), and the ranks' own HTTP log shows requests
that got no answer, sent again, and answered by the Azurite started anew on the same port and
data folder.
"""

import ast
import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scripts.azurite import azurite_connection_string, free_port
from tests.conftest import start_azurite
from tests.media import decode_rgb
from tests.processes import freeze, kill_all, thaw, tree, world_ranks
from videostyle.commands import process_env, step_argv
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

RANKS = 2

# sitecustomize for the ranks: azure-core's HTTP logging policy (which the CLI mutes with the
# rest of `azure`) writes one line per request attempt and per response to a file of each
# process's own. The policy sits inside the storage retry policy: every attempt is logged.
HTTP_LOG_HOOK = """
import logging
import os

_folder = os.environ.get("VIDEOSTYLE_TEST_HTTP_LOG")
if _folder:
    _handler = logging.FileHandler(os.path.join(_folder, f"{os.getpid()}.log"))
    _handler.setFormatter(logging.Formatter("%(message)r"))
    _logger = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    _logger.setLevel(logging.INFO)
    _logger.addHandler(_handler)
    _logger.propagate = False
"""


class Azurite:
    """A private Azurite on one port and data folder, stopped and started by the test."""

    def __init__(self, port: int, location: Path) -> None:
        self.port, self.location = port, location
        self.proc = start_azurite(port, location)

    def stop(self) -> None:
        """SIGTERM: Azurite closes its server and saves its metadata, then exits."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("Azurite did not exit on SIGTERM")

    def start(self) -> None:
        self.proc = start_azurite(self.port, self.location)


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    service = Azurite(free_port(), tmp_path / "azurite")
    try:
        yield service
    finally:
        if service.proc.poll() is None:
            service.proc.terminate()
            service.proc.wait(timeout=60)


@dataclass(frozen=True)
class Attempt:
    """One HTTP request as a rank's SDK sent it (each retry is an attempt of its own)."""

    method: str
    url: str
    answered: bool


def http_log(
    folder: Path, *, after: dict[str, int] | None = None, before: dict[str, int] | None = None
) -> list[Attempt]:
    """The attempts in the ranks' HTTP logs (only those past `after[file]` bytes, or before
    `before[file]`, where given); answered where the log shows a response with the attempt's
    client request id, wherever in the log it is."""
    requests: list[tuple[str, str, str]] = []
    answered: set[str] = set()
    for log in sorted(folder.glob("*.log")):
        data = log.read_bytes()
        start = (after or {}).get(log.name, 0)
        stop = (before or {}).get(log.name, 0) if before is not None else len(data)
        for offset, line in _lines(data):
            message: str = ast.literal_eval(line)
            fields = dict(_fields(message))
            ident = fields.get("x-ms-client-request-id", "")
            if message.startswith("Request URL:") and start <= offset < stop:
                requests.append((fields["Request method"], fields["Request URL"], ident))
            elif message.startswith("Response status:"):
                answered.add(ident)
    return [Attempt(method, url, ident in answered) for method, url, ident in requests]


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """Each whole line of a log and the offset it starts at."""
    offset = 0
    for line in data.splitlines(keepends=True):
        if line.endswith(b"\n"):
            yield offset, line.decode()
        offset += len(line)


def _fields(message: str) -> Iterator[tuple[str, str]]:
    """`Name: 'value'` and header lines `'name': 'value'` of an HTTP log message."""
    for line in message.splitlines():
        key, colon, value = line.strip().partition(": ")
        if colon:
            yield key.strip("'"), value.strip("'")


def log_sizes(folder: Path) -> dict[str, int]:
    """Each HTTP log's length in whole lines: where what is logged from now on starts."""
    return {log.name: log.read_bytes().rfind(b"\n") + 1 for log in folder.glob("*.log")}


def retried_unanswered(attempts: list[Attempt]) -> set[tuple[str, str]]:
    """Uploads sent more than once without an answer: refused, and retried by the SDK (the
    steps themselves never upload one blob twice)."""
    sent: dict[tuple[str, str], int] = {}
    for attempt in attempts:
        if attempt.method == "PUT" and not attempt.answered:
            sent[attempt.method, attempt.url] = sent.get((attempt.method, attempt.url), 0) + 1
    return {request for request, times in sent.items() if times > 1}


def uploads(attempts: list[Attempt], *, answered: bool | None = None) -> set[str]:
    """The work blobs that `attempts` upload (only the answered ones, or the unanswered)."""
    return {
        attempt.url.split("/vwork/", 1)[1]
        for attempt in attempts
        if attempt.method == "PUT"
        and "/vwork/" in attempt.url
        and answered in (None, attempt.answered)
    }


def listener_inode(port: int) -> str | None:
    """The socket inode listening on 127.0.0.1:`port`, from the kernel's TCP table."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":  # LISTEN
            return fields[9]
    return None


def holds_socket(pid: int, inode: str) -> bool:
    """Whether process `pid` has the socket `inode` open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            if str(fd.readlink()) == f"socket:[{inode}]":
                return True
    return False


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_for(
    condition: Callable[[], bool], what: str, step: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll `condition` while `step` runs; its log's tail says why, if it ends first."""
    deadline = time.monotonic() + 300
    while not condition():
        if step.poll() is not None:
            pytest.fail(
                f"{what}: scoring exited {step.returncode} first\n{log.read_text()[-3000:]}"
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_blob_service_outage_mid_scoring_is_ridden_out(
    azurite: Azurite, sample_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import BlobServiceClient

    connection = azurite_connection_string(azurite.port)
    service = BlobServiceClient.from_connection_string(connection)
    for container in ("vin", "vwork", "vout"):
        service.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    for store, container in (("INPUTS", "vin"), ("WORK", "vwork"), ("OUTPUTS", "vout")):
        monkeypatch.setenv(f"VIDEOSTYLE_{store}_URL", f"az://{container}")
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("VIDEOSTYLE_MAX_UNIT_FRAMES", "5")  # 50 frames: 10 units
    stores = Stores(Settings())
    stores.inputs.upload(sample_clip, "clip.mp4")

    def cli(step: str, job: str, *args: str) -> None:
        done = subprocess.run(
            step_argv(step, ["--job", job, *args], ranks=RANKS),
            env=process_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"{step} {job} failed:\n{done.stderr[-3000:]}"

    for job in ("straight", "outage"):
        cli("preprocess", job, "--style", "scream", "--ranks", str(RANKS), "--", "clip.mp4")
    cli("score", "straight")  # the same job, scored without an outage
    plan = load_plan(stores.work, "outage")
    units = [plan.unit_name(u) for u in plan.units]

    hook, http = tmp_path / "hook", tmp_path / "http"
    hook.mkdir()
    http.mkdir()
    (hook / "sitecustomize.py").write_text(HTTP_LOG_HOOK)
    env = process_env({"VIDEOSTYLE_TEST_HTTP_LOG": str(http), "PYTHONPATH": str(hook)})
    stderr = tmp_path / "score.log"
    with stderr.open("wb") as err:
        scoring = subprocess.Popen(
            step_argv("score", ["--job", "outage"], ranks=RANKS),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: any(map(stores.work.exists, units)), "the first unit", scoring, stderr)
        # Freeze the whole step, so that what is checked holds while the service goes away.
        frozen = freeze(scoring.pid)
        assert world_ranks(frozen, "outage") == list(range(RANKS))
        done_before = [u for u in units if stores.work.exists(u)]
        assert 0 < len(done_before) < len(units), "scoring is not midway"

        first = azurite.proc
        azurite.stop()
        assert first.returncode is not None
        assert listener_inode(azurite.port) is None
        assert refuses(azurite.port)
        before_outage = log_sizes(http)
        thaw(frozen)

        # The ranks see the outage: an upload refused, and sent again after the SDK's backoff.
        wait_for(
            lambda: retried_unanswered(http_log(http, after=before_outage)) != set(),
            "a refused upload to be retried",
            scoring,
            stderr,
        )
        assert refuses(azurite.port)  # so every attempt so far went unanswered
        azurite.start()
        assert azurite.proc is not first
        code = scoring.wait(timeout=600)
        assert code == 0, stderr.read_text()[-3000:]
    finally:
        if scoring.poll() is None:
            kill_all(tree(scoring.pid))
            scoring.wait()

    during = http_log(http, after=before_outage)
    refused = retried_unanswered(during)
    assert refused
    # ... and the step's log says so: an operator sees an outage, not a silent stall.
    assert re.search(r"storage: PUT \S+ failed \(.+\): retry 1", stderr.read_text())
    for method, url in refused:  # refused while the service was down, answered once back
        assert Attempt(method, url, answered=True) in during

    # Scoring went on after the outage: every unit whose upload had not begun before it was
    # uploaded to the Azurite started anew (only it could answer what was sent after the stop).
    begun = uploads(http_log(http, before=before_outage))
    remaining = set(units) - begun
    assert remaining, "every upload had begun before the outage"
    assert remaining <= uploads(during, answered=True)

    # The Azurite started anew serves the port (the first one has exited), with every blob.
    assert azurite.proc.poll() is None
    inode = listener_inode(azurite.port)
    assert inode is not None
    assert holds_socket(azurite.proc.pid, inode)
    stores = Stores(Settings())  # new connections, to the new service
    assert all(map(stores.work.exists, units))
    cli("stitch", "outage")
    cli("stitch", "straight")
    outage = decode_rgb(stores.work.download(plan.stitched_name, tmp_path / "outage.mp4"))
    straight_plan = load_plan(stores.work, "straight")
    straight = decode_rgb(stores.work.download(straight_plan.stitched_name, tmp_path / "s.mp4"))
    assert len(outage) == plan.frame_count == 50
    assert np.array_equal(outage, straight)
