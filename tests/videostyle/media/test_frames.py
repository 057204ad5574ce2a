"""Frames through ffmpeg: the decode-ahead thread and the threaded encoder, on real ffmpeg."""

import queue
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_rgb
from videostyle.media.ffmpeg import FFmpegError
from videostyle.media.frames import FrameEncoder, read_ahead


def counting(n: int, produced: list[int], closed: list[bool]) -> Iterator[int]:
    try:
        for i in range(n):
            produced.append(i)
            yield i
    finally:
        closed.append(True)


def _producer_blocked(producer: threading.Thread | None) -> bool:
    """The read-ahead thread waits to put an item into its full queue, or has ended: it has
    run as far ahead of the consumer as it may, and will not go further until the next get."""
    if producer is None or not producer.is_alive():
        return True
    frame = sys._current_frames().get(producer.ident)  # type: ignore[arg-type]
    while frame is not None and frame.f_code is not threading.Condition.wait.__code__:
        frame = frame.f_back
    putting = frame is not None and frame.f_back is not None
    if not putting or frame.f_back.f_code is not queue.Queue.put.__code__:  # type: ignore[union-attr]
        return False
    ready: queue.Queue[object] = frame.f_back.f_locals["self"]  # type: ignore[union-attr]
    return ready.full()


def test_read_ahead_yields_everything_in_order_while_holding_at_most_depth_items() -> None:
    produced: list[int] = []
    items = read_ahead(counting(20, produced, []), depth=2)
    assert next(items) == 0
    producer = next((t for t in threading.enumerate() if t.name == "read-ahead"), None)
    for item in range(20):
        if item:
            assert next(items) == item
        deadline = time.monotonic() + 60  # a bound only: it waits for the producer's state
        while not _producer_blocked(producer):
            assert time.monotonic() < deadline, f"the producer never blocked at item {item}"
            time.sleep(0.001)
        # As far ahead as it may go, and no further: 2 queued, the one in the consumer's hand
        # and the one the producer is trying to put (fewer once it has produced them all).
        assert len(produced) - item == min(4, 20 - item)
    assert list(items) == []
    assert produced == list(range(20))


def test_read_ahead_raises_the_producers_error_in_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise FFmpegError("decoding broke")

    items = read_ahead(failing())
    assert next(items) == 1
    with pytest.raises(FFmpegError, match="decoding broke"):
        next(items)


def test_a_consumer_that_stops_early_stops_and_closes_the_producer() -> None:
    produced: list[int] = []
    closed: list[bool] = []
    items = read_ahead(counting(1000, produced, closed), depth=2)
    assert next(items) == 0
    items.close()
    assert closed == [True]
    assert len(produced) <= 5
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


def frames(n: int, height: int = 64, width: int = 96) -> np.ndarray:
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:height, 0:width]
    base = (
        np.stack([xs * 2, ys * 3, xs + ys], axis=-1)[None] + 10 * np.arange(n)[:, None, None, None]
    )
    pixels: np.ndarray = np.clip(base + rng.integers(0, 20, (n, height, width, 3)), 0, 255)
    return pixels.astype(np.uint8)


def test_encoder_writes_every_frame_in_order(tmp_path: Path) -> None:
    # Flat grey frames, each its own level: 4:2:0 keeps them (within rounding), so order shows.
    batch: np.ndarray = np.repeat(
        np.arange(10, dtype=np.uint8)[:, None, None, None] * 25, 64 * 96 * 3
    )
    batch = batch.reshape(10, 64, 96, 3)
    path = tmp_path / "out.mp4"
    with FrameEncoder(
        path, width=96, height=64, frame_rate=Fraction(25), crf=0, threads=1, timeout=60
    ) as encoder:
        for i in range(0, 10, 3):
            encoder.write(batch[i : i + 3])
    assert encoder.frames == 10
    decoded = decode_rgb(path)
    assert decoded.shape == batch.shape
    assert np.abs(decoded.astype(int) - batch).max() <= 2
    assert not [t for t in threading.enumerate() if t.name == "encode"]


def test_encoder_failure_is_reported_with_ffmpegs_words(tmp_path: Path) -> None:
    # libx264 refuses 4:2:0 at an odd width; the frames then meet a closed pipe.
    encoder = FrameEncoder(
        tmp_path / "odd.mp4",
        width=95,
        height=64,
        frame_rate=Fraction(25),
        crf=16,
        threads=1,
        timeout=60,
    )

    def write_all() -> None:
        for _ in range(50):
            encoder.write(frames(4, width=95))
        encoder.close()

    with pytest.raises(FFmpegError, match=r"encoding odd\.mp4 failed: .*divisible by 2"):
        write_all()
    encoder.abort()
    assert not [t for t in threading.enumerate() if t.name == "encode"]


def test_aborted_encoder_leaves_no_process_or_thread(tmp_path: Path) -> None:
    encoder = FrameEncoder(
        tmp_path / "out.mp4",
        width=96,
        height=64,
        frame_rate=Fraction(25),
        crf=16,
        threads=1,
        timeout=60,
    )
    encoder.write(frames(4))
    pid = encoder._proc.pid
    encoder.abort()
    assert not Path(f"/proc/{pid}").exists()
    assert not [t for t in threading.enumerate() if t.name == "encode"]
