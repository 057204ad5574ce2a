"""Units joined into one video stream by stream copy, every frame at its own source timestamp.

Scoring codes each unit at a constant rate from zero (x264 through ffmpeg's rawvideo pipe,
which carries no timestamps). Here each packet's frame index within its unit is read back from
that grid and the packet is given the source's exact timestamp of that frame, whatever the
source's timing: constant, rounded to a container's clock, or variable. ffmpeg's command line
has no way to set a timestamp per frame from a list; PyAV (libav's demuxer and muxer) does,
packet by packet, without decoding.

Decode timestamps go through the same mapping: a packet decoded k frames before the one shown
at index i is decoded at frame i - k's source time, so decode order stays strictly increasing
and no frame is shown before it is decoded. Before the first frame (x264's reorder delay) and
after the last, the nearest gap is repeated.
"""

from __future__ import annotations  # av.Packet is generic to type checkers only

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from videostyle.media.ffmpeg import FFmpegError


class SourceClock:
    """Frame index → source timestamp (ticks), extended past both ends by the nearest gap."""

    def __init__(self, pts: Sequence[int]) -> None:
        self.pts = pts
        self.first_gap = pts[1] - pts[0] if len(pts) > 1 else 1
        self.last_gap = pts[-1] - pts[-2] if len(pts) > 1 else 1

    def __call__(self, index: int) -> int:
        if index < 0:
            return self.pts[0] + index * self.first_gap
        if index >= len(self.pts):
            return self.pts[-1] + (index - len(self.pts) + 1) * self.last_gap
        return self.pts[index]


def join_units(
    parts: Sequence[tuple[Path, int, int]],
    output: Path,
    *,
    rate: Fraction,
    time_base: Fraction,
    pts: Sequence[int],
) -> None:
    """Write the video streams of `parts` (unit file, its first frame's index, its frame count),
    coded at `rate` from zero, into `output` with frame i at `pts[i]` ticks of `time_base`."""
    clock = SourceClock(pts)
    try:
        with av.open(str(output), "w", format="mp4") as joined:
            stream: av.video.stream.VideoStream | None = None
            for path, first, count in parts:
                with av.open(str(path)) as unit:
                    source = unit.streams.video[0]
                    if stream is None:
                        stream = joined.add_stream_from_template(source)
                        stream.time_base = time_base
                    for packet in _retimed(unit.demux(source), path, first, count, rate, clock):
                        packet.time_base = time_base
                        packet.stream = stream
                        joined.mux(packet)
    except av.FFmpegError as exc:
        raise FFmpegError(f"joining units into {output.name} failed: {exc}") from exc


def _retimed(
    demuxed: Iterable[av.Packet[Any]],
    path: Path,
    first: int,
    count: int,
    rate: Fraction,
    clock: SourceClock,
) -> list[av.Packet[Any]]:
    """A unit's packets, each at its frame's source time (ticks of the clock's time base)."""
    packets = [
        (p, p.pts, p.dts)
        for p in demuxed
        if p.size and p.pts is not None and p.dts is not None  # not the end-of-stream flush
    ]
    if len(packets) != count:
        raise FFmpegError(f"{path.name} holds {len(packets)} frames, not {count}")
    # The grid's origin: the unit's first shown frame (0, unless an edit list was lost).
    origin = min(shown_at for _, shown_at, _ in packets)
    shown = []
    for packet, shown_at, decoded_at in packets:
        index = round((shown_at - origin) * packet.time_base * rate)
        decoded = round((decoded_at - origin) * packet.time_base * rate)
        shown.append(index)
        packet.pts = clock(first + index)
        packet.dts = clock(first + decoded)
        packet.duration = clock(first + index + 1) - packet.pts
    if sorted(shown) != list(range(count)):
        raise FFmpegError(f"{path.name}'s frames are not on its {rate} fps grid")
    return [packet for packet, _, _ in packets]
