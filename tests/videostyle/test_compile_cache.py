"""Compiled kernels are made once and travel: a rank on a machine that compiled the model
reuses its kernels, a rank on a new machine unpacks them from the work store, and the decision
to compile counts what compiling would cost there."""

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.media import decode_rgb, make_clip
from videostyle.commands import process_env, step_argv
from videostyle.compile_cache import PREFIX, CompileCache, Warmth, cache_key
from videostyle.defaults import BUILTIN_MODEL
from videostyle.plan import Plan
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.score import COMPILE_MIN_MPX, should_compile
from videostyle.storage import BlobStore, Stores

CPU = torch.device("cpu")
KEY = cache_key(
    BUILTIN_MODEL, width=64, height=48, batch=1, precision="fp32", device=CPU, threads=1
)


def fake_compiled(folder: Path) -> None:
    """What inductor leaves in its cache folder, in miniature."""
    (folder / "fxgraph" / "ab").mkdir(parents=True)
    (folder / "fxgraph" / "ab" / "graph").write_bytes(b"graph")
    (folder / "cd").mkdir()
    (folder / "cd" / "kernel.so").write_bytes(b"\x7fELF kernel")
    (folder / "locks").mkdir()
    (folder / "locks" / "cd.lock").write_bytes(b"")


def test_the_key_names_model_size_batch_precision_torch_and_hardware() -> None:
    assert KEY.startswith(f"{BUILTIN_MODEL}-64x48-b1-fp32-t1-torch{torch.__version__[:4]}")
    assert torch.backends.cpu.get_cpu_capability().lower() in KEY
    for precision, threads in (("bf16", 1), ("fp32", 2)):
        other = cache_key(
            BUILTIN_MODEL,
            width=64,
            height=48,
            batch=1,
            precision=precision,
            device=CPU,
            threads=threads,
        )
        assert other != KEY


def test_kernels_come_from_the_machine_then_the_store_then_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(str(tmp_path / "work"), Settings())
    first = CompileCache(store, tmp_path / "machine-a", KEY)
    assert first.warmth() is Warmth.COLD
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "elsewhere")
    assert first.use() is Warmth.COLD
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(first.folder)
    fake_compiled(first.folder)
    assert first.warmth() is Warmth.MACHINE
    first.keep()
    assert store.list(PREFIX) == [f"{PREFIX}/{KEY}.tar.gz"]
    with tarfile.open(tmp_path / "work" / PREFIX / f"{KEY}.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["cd/kernel.so", "fxgraph/ab/graph"]  # no locks

    # A new machine: nothing of its own, the store's archive unpacked whole.
    second = CompileCache(store, tmp_path / "machine-b", KEY)
    assert second.warmth() is Warmth.STORE
    assert second.use() is Warmth.STORE
    assert (second.folder / "cd" / "kernel.so").read_bytes() == b"\x7fELF kernel"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(second.folder)
    assert second.use() is Warmth.MACHINE
    assert [p.name for p in second.folder.parent.iterdir()] == [KEY]  # no staging left

    # The first archive stays: a rank that compiled at the same time does not replace it.
    (first.folder / "cd" / "kernel.so").write_bytes(b"changed")
    first.keep()
    third = CompileCache(store, tmp_path / "machine-c", KEY)
    third.use()
    assert (third.folder / "cd" / "kernel.so").read_bytes() == b"\x7fELF kernel"


@pytest.mark.parametrize(
    ("setting", "device", "precision", "warm", "mpx", "expected"),
    [
        ("on", "cpu", "fp32", False, 0.1, True),
        ("off", "cpu", "bf16", True, 1000, False),
        ("auto", "cpu", "fp32", False, COMPILE_MIN_MPX[("fp32", Warmth.COLD)], True),
        ("auto", "cpu", "fp32", False, COMPILE_MIN_MPX[("fp32", Warmth.COLD)] - 1, False),
        ("auto", "cpu", "fp32", True, COMPILE_MIN_MPX[("fp32", Warmth.MACHINE)], True),
        ("auto", "cpu", "bf16", False, COMPILE_MIN_MPX[("bf16", Warmth.COLD)] - 1, False),
        ("auto", "cpu", "bf16", True, COMPILE_MIN_MPX[("bf16", Warmth.MACHINE)], True),
        ("auto", "cpu", "bf16", True, COMPILE_MIN_MPX[("bf16", Warmth.MACHINE)] - 1, False),
        ("auto", "cuda", "fp16", True, 1000, False),
    ],
)
def test_compiling_is_chosen_when_the_work_pays_for_it_here(
    setting: str,
    device: str,
    precision: str,
    warm: bool,
    mpx: float,
    expected: bool,
    tmp_path: Path,
) -> None:
    cache = CompileCache(BlobStore(str(tmp_path / "work"), Settings()), tmp_path, KEY)
    if warm:
        fake_compiled(cache.folder)
    pixels = int(mpx * 1e6)
    chosen = should_compile(setting, torch.device(device), pixels, precision=precision, cache=cache)
    assert chosen is expected


def test_warm_kernels_make_short_clips_worth_compiling() -> None:
    for precision in ("fp32", "bf16"):
        assert (
            COMPILE_MIN_MPX[(precision, Warmth.STORE)] * 4
            <= COMPILE_MIN_MPX[(precision, Warmth.COLD)]
        )


def test_auto_does_not_compile_without_a_cpp_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler")
    cache = CompileCache(BlobStore(str(tmp_path / "work"), Settings()), tmp_path, KEY)
    assert not should_compile("auto", CPU, 10**10, precision="fp32", cache=cache)


def score_in_a_new_process(stores: Stores, settings: Settings, cache_dir: Path) -> dict[str, Any]:
    """`videostyle score` of the job, compiled, its units removed first; its rank's figures."""
    for name in stores.work.list("jobs/job/units"):
        stores.work.fs.rm(str(Path(settings.work_url) / name))
    env = process_env(
        {
            "VIDEOSTYLE_INPUTS_URL": settings.inputs_url,
            "VIDEOSTYLE_WORK_URL": settings.work_url,
            "VIDEOSTYLE_OUTPUTS_URL": settings.outputs_url,
            "VIDEOSTYLE_SCRATCH_DIR": str(settings.scratch_dir),
            "VIDEOSTYLE_COMPILE": "on",
            "VIDEOSTYLE_COMPILE_CACHE_DIR": str(cache_dir),
        }
    )
    done = subprocess.run(
        step_argv("score", ["--job", "job"]), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    timing = json.loads(stores.work.read_bytes("jobs/job/timings/score.json"))
    rank: dict[str, Any] = timing["ranks"][0]
    return rank


def test_a_new_machine_reuses_the_kernels_another_compiled(tmp_path: Path) -> None:
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=4,
    )
    stores = Stores(settings)
    stores.inputs.upload(make_clip(tmp_path / "clip.mp4", frames=6, audio=False), "clip.mp4")
    plan: Plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id="job",
        model=BUILTIN_MODEL,
        options={"style": "scream"},
        crf=0,
        ranks=1,
    )
    assert plan.timing_name("score") == "jobs/job/timings/score.json"

    def units() -> list[Any]:
        return [
            decode_rgb(stores.work.download(plan.unit_name(u), tmp_path / "u.mp4"))
            for u in plan.units
        ]

    cold = score_in_a_new_process(stores, settings, tmp_path / "machine-a")
    assert (cold["compile_cache"], cold["graphs_reused"]) == ("cold", 0)
    assert cold["graphs_compiled"] >= 1
    assert stores.work.list(PREFIX) == [
        f"{PREFIX}/{next((tmp_path / 'machine-a').iterdir()).name}.tar.gz"
    ]
    first = units()

    fresh = score_in_a_new_process(stores, settings, tmp_path / "machine-b")
    assert (fresh["compile_cache"], fresh["graphs_compiled"]) == ("store", 0)
    assert fresh["graphs_reused"] == cold["graphs_compiled"]
    again = score_in_a_new_process(stores, settings, tmp_path / "machine-b")
    assert (again["compile_cache"], again["graphs_compiled"]) == ("machine", 0)
    for mine, theirs in zip(units(), first, strict=True):  # the same kernels, the same frames
        assert (mine == theirs).all()
