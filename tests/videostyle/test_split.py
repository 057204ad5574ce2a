import pytest

from videostyle.split import even_split, rank_units, units_for


def test_even_split_keeps_the_remainder() -> None:
    parts = even_split(823, 4)
    assert [len(p) for p in parts] == [206, 206, 206, 205]
    assert [f for p in parts for f in p] == list(range(823))


@pytest.mark.parametrize(("total", "parts"), [(0, 3), (1, 4), (7, 7), (100, 3), (5, 8)])
def test_even_split_covers_every_item_once(total: int, parts: int) -> None:
    ranges = even_split(total, parts)
    assert len(ranges) == parts
    assert [f for r in ranges for f in r] == list(range(total))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


@pytest.mark.parametrize(
    ("frames", "ranks", "limit"), [(823, 4, 48), (823, 3, 1000), (48, 2, 10), (3, 4, 48), (1, 1, 1)]
)
def test_every_rank_gets_an_even_share_of_frames(frames: int, ranks: int, limit: int) -> None:
    units = units_for(frames, ranks, limit)
    assert max(map(len, units)) <= limit
    assert [f for u in units for f in u] == list(range(frames))
    shares = [sum(len(units[i]) for i in rank_units(len(units), r, ranks)) for r in range(ranks)]
    assert sum(shares) == frames
    assert max(shares) - min(shares) <= 1


def test_823_frames_over_4_ranks() -> None:
    units = units_for(823, 4, 48)
    shares = [sum(len(units[i]) for i in rank_units(len(units), r, 4)) for r in range(4)]
    assert shares == [206, 206, 206, 205]


def test_rank_outside_the_world_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 4"):
        rank_units(10, 4, 4)
