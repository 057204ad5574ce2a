"""A model that styles from its first second while its compiled twin loads and warms up.

torch.compile makes a style network about twice as fast on CPU, but it costs a second of
imports and then compiles on the first call: about 4 s in all with compiled kernels at hand,
20-35 s without. Waiting for it would leave a rank idle that long before its first frame.
Instead the compiled twin is loaded and warmed up in a thread of its own while the eager model
styles; frames go to the compiled one once it is warm. Both give the
same output within one pixel level (tests/videostyle/models/test_style_runner_compiled.py).
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from videostyle.models.base import FrameTransform

log = logging.getLogger(__name__)


class WarmingTransform:
    """`eager` styles until the model `load_compiled` returns has warmed up on a batch of that
    shape, then that one does."""

    def __init__(
        self,
        eager: FrameTransform,
        load_compiled: Callable[[], FrameTransform],
        *,
        batch: int,
        height: int,
        width: int,
    ) -> None:
        self._eager = eager
        self._compiled: FrameTransform | None = None
        self._styled = {"frames_eager": 0, "frames_compiled": 0}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compile")
        self._warmed = self._pool.submit(self._warm, load_compiled, batch, height, width)

    def _warm(
        self, load_compiled: Callable[[], FrameTransform], batch: int, height: int, width: int
    ) -> float:
        start = time.perf_counter()
        compiled = load_compiled()
        with torch.inference_mode():  # thread-local: the styling thread's is not inherited
            compiled.warm_up(batch, height, width)
        self._compiled = compiled
        return time.perf_counter() - start

    @property
    def warm(self) -> bool:
        """Whether frames now go to the compiled model."""
        return self._warmed.done() and self._warmed.exception() is None

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        compiled = self._compiled if self.warm else None
        self._styled["frames_compiled" if compiled else "frames_eager"] += len(frames)
        return (compiled or self._eager)(frames)

    def warm_up(self, batch: int, height: int, width: int) -> None:
        """Already under way, in its own thread."""

    def finish(self) -> dict[str, float | str]:
        """Wait for the warm-up (a clip that ended first still leaves its kernels in the compile
        cache for the next one); how long it took, or why it failed (the frames were then all
        styled eagerly: slower, not wrong), and how many frames each model styled."""
        try:
            warmed: dict[str, float | str] = {"warmup_seconds": round(self._warmed.result(), 3)}
        except Exception as error:  # any failure to compile leaves the eager model styling
            log.error("compiling failed, every frame styled uncompiled: %s", error)
            warmed = {"compile_failed": f"{type(error).__name__}: {error}"}
        finally:
            self._pool.shutdown()
        return warmed | self._styled
