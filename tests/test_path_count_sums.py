"""Path counts meeting at a merge add position by position (`receptive_field._add_one`), whatever
their spans: held to a sum over a dictionary of positions."""

from __future__ import annotations

import random

from archcalc.passes.receptive_field import Profile, _add_one


def by_position(*profiles: Profile) -> dict[int, int]:
    total: dict[int, int] = {}
    for p in profiles:
        for k, c in enumerate(p.counts):
            total[p.start + k] = total.get(p.start + k, 0) + c
    return total


def test_sums_over_any_spans_are_the_position_by_position_sums() -> None:
    rng = random.Random(7)
    for _ in range(500):
        x, y = (Profile(rng.randint(-5, 5), tuple(rng.randint(0, 3 ** 40) for _ in range(rng.randint(0, 8))))
                for _ in range(2))
        added = _add_one(x, y)
        if not x.counts or not y.counts:  # no path on one side: the other as it is
            assert added == (y if not x.counts else x)
            continue
        span = range(min(x.start, y.start), max(x.start + x.size, y.start + y.size))
        assert (added.start, added.size) == (span.start, len(span))
        summed = by_position(x, y)
        assert by_position(added) == {q: summed.get(q, 0) for q in span}
