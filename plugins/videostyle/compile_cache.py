"""torch.compile's kernels, made once and carried to every rank of every run.

Inductor keeps what it compiles (FX graphs, and the C++ or Triton kernels built from them) in an
on-disk cache; with that cache warm, compiling a style network takes about 2 s instead of
20-35 s on 2 CPU cores. Each compiled model gets a cache folder of its own on the machine
(`VIDEOSTYLE_COMPILE_CACHE_DIR`/<key>), and after a cold compile its content goes to the work
store as one archive (`compile-cache/<key>.tar.gz`), which a rank on a new machine (a new pod)
unpacks before compiling. The key names the model, frame size, batch, precision, threads per
rank, torch version and hardware kind; inductor's own cache keys still decide what is reused,
so an archive from other hardware or another torch can only miss, never load a wrong kernel.
"""

import contextlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
from enum import StrEnum
from pathlib import Path

import torch

from videostyle.storage import BlobStore

log = logging.getLogger(__name__)

PREFIX = "compile-cache"


class Warmth(StrEnum):
    """Where a rank's compiled kernels come from."""

    MACHINE = "machine"  # this machine compiled them before
    STORE = "store"  # unpacked from the work store's archive
    COLD = "cold"  # compiled here and now


def hardware_kind(device: torch.device) -> str:
    """What compiled kernels depend on: the CPU's vector units, or the GPU's architecture."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"sm{major}{minor}"
    units = [torch.backends.cpu.get_cpu_capability().lower()]
    units += ["amx"] if torch.cpu._is_amx_tile_supported() else []
    units += ["bf16"] if torch.cpu._is_avx512_bf16_supported() else []
    return "-".join(units)


def cache_key(
    model: str,
    *,
    width: int,
    height: int,
    batch: int,
    precision: str,
    device: torch.device,
    threads: int,
) -> str:
    """CPU kernels are built for a thread count: `threads` per rank is part of the key."""
    torch_version = torch.__version__.replace("+", "-")
    kind = hardware_kind(device)
    shape = f"{width}x{height}-b{batch}-{precision}-t{threads}"
    return f"{model}-{shape}-torch{torch_version}-{kind}"


class CompileCache:
    """The inductor cache of one compiled model: a folder on this machine, an archive in the
    work store."""

    def __init__(self, store: BlobStore, root: Path, key: str) -> None:
        self._store = store
        self.key = key
        self.folder = root / key
        self.blob = f"{PREFIX}/{key}.tar.gz"

    def warmth(self) -> Warmth:
        """Where compiled kernels would come from now (cheap: no download)."""
        if (self.folder / "fxgraph").is_dir():
            return Warmth.MACHINE
        return Warmth.STORE if self._store.exists(self.blob) else Warmth.COLD

    def use(self) -> Warmth:
        """Point inductor at this model's folder, unpacking the store's archive into it if the
        machine has none; returns where the kernels come from. Call before compiling."""
        warmth = self.warmth()
        if warmth is Warmth.STORE:
            self._unpack()
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.folder)
        log.info("compile cache %s: %s", self.key, warmth)
        return warmth

    def keep(self) -> None:
        """Archive the folder into the store, unless an archive is there already (ranks that
        compiled at the same time make equivalent ones: the first stays)."""
        if self._store.exists(self.blob):
            return
        with tempfile.TemporaryDirectory(dir=self.folder.parent) as tmp:
            archive = Path(tmp) / "cache.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                # Inductor writes each file whole (a rename): a listing holds whole files.
                for path in sorted(self.folder.rglob("*")):
                    if path.is_file() and "locks" not in path.relative_to(self.folder).parts:
                        tar.add(path, arcname=str(path.relative_to(self.folder)))
            self._store.upload(archive, self.blob)
            log.info("compile cache %s kept: %d bytes", self.key, archive.stat().st_size)

    def _unpack(self) -> None:
        """The archive into the folder, whole or not at all: ranks on one machine may race."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{self.key}-", dir=self.folder.parent))
        try:
            with tarfile.open(fileobj=io.BytesIO(self._store.read_bytes(self.blob))) as tar:
                tar.extractall(staging, filter="data")
            with contextlib.suppress(OSError):  # another rank of this machine unpacked it first
                staging.rename(self.folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
