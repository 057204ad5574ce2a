"""Frames are styled from the start: by the eager model until its compiled twin is warm, then
by the twin; a twin that fails to compile leaves the eager model styling."""

import threading

import pytest
import torch

from videostyle.models.warming import WarmingTransform

FRAMES = torch.zeros((1, 8, 8, 3), dtype=torch.uint8)


class Shift:
    """A transform adding `by` to every pixel; its warm-up waits for `ready` (a compile)."""

    def __init__(self, by: int, ready: threading.Event | None = None) -> None:
        self.by = by
        self.ready = ready
        self.warmed: list[tuple[int, int, int]] = []

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return frames + self.by

    def warm_up(self, batch: int, height: int, width: int) -> None:
        if self.ready is not None:
            assert self.ready.wait(timeout=30)
        self.warmed.append((batch, height, width))


def test_the_eager_model_styles_until_the_compiled_one_is_warm() -> None:
    ready = threading.Event()
    twin = Shift(2, ready)
    loads: list[str] = []

    def load_compiled() -> Shift:
        loads.append(threading.current_thread().name)
        return twin

    warming = WarmingTransform(Shift(1), load_compiled, batch=1, height=8, width=8)
    assert not warming.warm
    assert int(warming(FRAMES)[0, 0, 0, 0]) == 1  # eager, while the twin compiles
    ready.set()
    facts = warming.finish()
    assert warming.warm
    assert int(warming(FRAMES)[0, 0, 0, 0]) == 2
    assert twin.warmed == [(1, 8, 8)]
    assert loads[0].startswith("compile")  # loaded off the styling thread
    assert isinstance(facts["warmup_seconds"], float)
    assert (facts["frames_eager"], facts["frames_compiled"]) == (1, 0)
    warming(FRAMES)
    assert warming.finish()["frames_compiled"] == 2


def test_a_twin_that_fails_to_compile_leaves_eager_styling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def load_compiled() -> Shift:
        raise RuntimeError("no C++ compiler")

    warming = WarmingTransform(Shift(1), load_compiled, batch=1, height=8, width=8)
    assert warming.finish()["compile_failed"] == "RuntimeError: no C++ compiler"
    assert not warming.warm
    assert int(warming(FRAMES)[0, 0, 0, 0]) == 1
    assert "compiling failed, every frame styled uncompiled" in caplog.text
