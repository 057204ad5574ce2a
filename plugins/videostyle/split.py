"""How frames become units and units become each rank's share: even, remainder included."""


def even_split(total: int, parts: int) -> list[range]:
    """Cut range(total) into `parts` contiguous ranges whose lengths differ by at most one."""
    if total < 0 or parts < 1:
        raise ValueError(f"cannot split {total} items into {parts} parts")
    base, extra = divmod(total, parts)
    ranges, start = [], 0
    for part in range(parts):
        stop = start + base + (1 if part < extra else 0)
        ranges.append(range(start, stop))
        start = stop
    return ranges


def units_for(frames: int, ranks: int, max_unit_frames: int) -> list[range]:
    """Frame ranges of the units: a multiple of `ranks` of them, none longer than max_unit_frames.

    A multiple of the rank count keeps every rank's frame count within one of the others when
    units are dealt round-robin (see `rank_units`).
    """
    if frames < 1:
        raise ValueError("a video needs at least one frame")
    per_rank = -(-frames // (ranks * max_unit_frames))
    count = min(frames, ranks * per_rank)
    return even_split(frames, count)


def rank_units(unit_count: int, rank: int, size: int) -> list[int]:
    """Unit indices for `rank` of `size`, dealt round-robin so that unit sizes even out."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} outside a world of {size}")
    return list(range(rank, unit_count, size))
