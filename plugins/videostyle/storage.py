"""Named blobs in a container (Azure, through adlfs) or a local folder, through one fsspec API."""

import contextlib
import fcntl
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import fsspec
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobLeaseClient
from fsspec.implementations.local import LocalFileSystem
from pydantic import SecretStr

from videostyle.errors import BadInputError
from videostyle.settings import Settings

log = logging.getLogger(__name__)

# A blob lease lasts this long unless renewed: a lock holder that dies frees it within this time.
LEASE_S = 60
LEASE_RENEW_S = 15
LOCK_POLL_S = 1.0


def check_name(name: str) -> str:
    """A blob name is data, never a path choice: no absolute names, no `..`, no empty parts."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BadInputError(f"unsafe blob name {name!r}")
    return name


def _log_retry(*, retry_count: int, request: Any, response: Any, error: Any, **_: Any) -> None:
    """The Azure SDK retries a failed request after a backoff, silently: say so, each time."""
    why = error if error is not None else f"HTTP {response.status_code}"
    log.warning(
        "storage: %s %s failed (%s): retry %d", request.method, request.url, why, retry_count + 1
    )


def content_version(content_md5: bytes | bytearray | None, etag: object) -> str:
    """What tells one content of a blob name from another: its content MD5, hex, where the
    service keeps one (a re-upload of the same bytes keeps it), else its ETag, unquoted (chunked
    uploads get no whole-blob MD5, so any re-upload counts as new)."""
    return bytes(content_md5).hex() if content_md5 else str(etag).strip('"')


class BlobStat(NamedTuple):
    size: int
    version: str  # content_version; a local file's mtime stands for its ETag
    modified: float  # when this content was written: seconds since the epoch


class BlobStore:
    """A container (or a prefix in it) whose blobs are addressed by relative names."""

    def __init__(
        self, url: str, settings: Settings, *, credential: SecretStr | None = None
    ) -> None:
        """`credential`, a connection string for this store, takes precedence over the settings'."""
        options: dict[str, Any] = {}
        if url.startswith(("az://", "abfs://")):
            secret = credential or settings.connection_string
            if secret is None:
                raise BadInputError(
                    f"{url} needs a connection string: its store's "
                    "VIDEOSTYLE_<STORE>_CONNECTION_STRING or AZURE_STORAGE_CONNECTION_STRING"
                )
            # Listing caches would make `exists` stale between ranks and retries.
            options = {
                "connection_string": secret.get_secret_value(),
                "use_listings_cache": False,
                "skip_instance_cache": True,
            }
        self._connection_string = options.get("connection_string")
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self._local = isinstance(self.fs, LocalFileSystem)
        # adlfs hands this to the SDK on uploads (its downloads drop it).
        self._requests: dict[str, Any] = {} if self._local else {"retry_hook": _log_retry}
        if self._local:
            self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, name: str) -> str:
        return posixpath.join(self.root, check_name(name))

    def uri(self, name: str) -> str:
        return f"{self.url}/{check_name(name)}"

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    def stat(self, name: str) -> BlobStat:
        info = self.fs.info(self._path(name))
        version = content_version(
            info.get("content_settings", {}).get("content_md5"), info.get("etag") or info["mtime"]
        )
        modified = info.get("last_modified") or info["mtime"]
        if isinstance(modified, datetime):
            modified = modified.timestamp()
        return BlobStat(size=int(info["size"]), version=version, modified=float(modified))

    def list(self, prefix: str = "") -> list[str]:
        base = self.root.rstrip("/") + "/"
        found = self.fs.find(posixpath.join(self.root, prefix) if prefix else self.root)
        return sorted(p[len(base) :] for p in found if p.startswith(base))

    def download(self, name: str, local: Path) -> Path:
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._path(name), str(local))
        return local

    def upload(self, local: Path, name: str) -> None:
        """Publish a file under `name` all at once: readers see the whole blob or none of it."""
        self._commit(name, lambda path: self.fs.put_file(str(local), path, **self._requests))

    def read_bytes(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(name)))

    def write_bytes(self, name: str, data: bytes) -> None:
        self._commit(name, lambda path: self.fs.pipe_file(path, data, **self._requests))

    def _commit(self, name: str, write: Callable[[str], object]) -> None:
        path = self._path(name)
        if not self._local:
            write(path)  # one blob upload commits atomically
            return
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        partial = f"{path}.partial-{uuid.uuid4().hex}"
        write(partial)
        self.fs.mv(partial, path)

    @contextlib.contextmanager
    def lock(self, name: str, *, holder: str) -> Iterator[None]:
        """Hold the lock `name` while the block runs: one holder at a time, across processes and
        machines, and a holder that dies frees it (a local file's flock goes with its process; a
        blob lease lapses within LEASE_S). Logs once, naming `holder`, if it has to wait."""
        path = self._path(name)
        if self._local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with Path(path).open("a+b") as file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("%s waits for the lock %s", holder, self.uri(name))
                    fcntl.flock(file, fcntl.LOCK_EX)
                yield  # closing the file releases the lock
            return
        with self._lease(path, holder=holder, uri=self.uri(name)):
            yield

    @contextlib.contextmanager
    def _lease(self, path: str, *, holder: str, uri: str) -> Iterator[None]:
        assert self._connection_string is not None  # an az:// store always has one
        container, blob_name = path.split("/", 1)
        blob = BlobClient.from_connection_string(self._connection_string, container, blob_name)
        with contextlib.suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        waited = False
        while True:
            try:
                lease.acquire(lease_duration=LEASE_S)
                break
            except HttpResponseError as exc:
                if exc.status_code != 409:  # 409: another holder has it
                    raise
            if not waited:
                log.info("%s waits for the lock %s", holder, uri)
                waited = True
            time.sleep(LOCK_POLL_S)
        released = threading.Event()

        def renew() -> None:  # publishing a long video outlasts one lease
            while not released.wait(LEASE_RENEW_S):
                lease.renew()

        renewer = threading.Thread(target=renew, name="lease-renewer", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            released.set()
            renewer.join()
            lease.release()


class Stores:
    """The places a job touches: where videos arrive, where work lives, where results go, and
    where style images wait to be named by a job.

    Each opens on first use with its own credential (else the settings' connection string), so
    a step holding credentials only for the stores it touches never needs the others'.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def inputs(self) -> BlobStore:
        s = self._settings
        return BlobStore(s.inputs_url, s, credential=s.inputs_connection_string)

    @cached_property
    def work(self) -> BlobStore:
        s = self._settings
        return BlobStore(s.work_url, s, credential=s.work_connection_string)

    @cached_property
    def outputs(self) -> BlobStore:
        s = self._settings
        return BlobStore(s.outputs_url, s, credential=s.outputs_connection_string)

    @cached_property
    def styles(self) -> BlobStore:
        s = self._settings
        return BlobStore(s.styles_url, s, credential=s.styles_connection_string)
