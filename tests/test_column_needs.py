"""ColumnNeeds (mltop/widgets/column_needs.py) keeps each shared column's widest value by counting:
after any sequence of refreshes it must say what taking the maximum over every row says."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.widgets.column_needs import ColumnNeeds

# A refresh: which rows (keys 0-7) are shown, and each one's version (a new version: a new record,
# another width). Rows measured with token None are measured every time.
refreshes = st.lists(st.dictionaries(st.integers(0, 7), st.integers(0, 3), max_size=8), min_size=1, max_size=12)


def widths(key: int, version: int) -> dict[str, int]:
    needs = {"name": (key * 7 + version * 3) % 11}
    if (key + version) % 3:
        needs["reason"] = (key + 2 * version) % 5  # not every row has every column
    return needs


@settings(max_examples=300, deadline=None)
@given(refreshes, st.booleans())
def test_the_counted_needs_are_the_maximum_over_the_rows(steps, untokened):
    needs, measured = ColumnNeeds(), []
    for shown in steps:
        rows = [(str(k), (k, v), None if untokened and k % 2 else ("token", k, v)) for k, v in shown.items()]
        got = needs.update(rows, lambda record: measured.append(record) or widths(*record))
        expected: dict[str, int] = {}
        for k, v in shown.items():
            for column, width in widths(k, v).items():
                expected[column] = max(expected.get(column, 0), width)
        assert got == expected


def test_a_row_with_the_same_token_is_not_measured_again():
    needs, measured = ColumnNeeds(), []
    measure = lambda record: measured.append(record) or {"name": len(record)}  # noqa: E731
    assert needs.update([("a", "alpha", 1), ("b", "be", 1)], measure) == {"name": 5}
    assert needs.update([("a", "alpha", 1), ("b", "bee", 2)], measure) == {"name": 5}
    assert needs.update([("b", "bee", 2)], measure) == {"name": 3}  # the widest row left
    assert measured == ["alpha", "be", "bee"]
