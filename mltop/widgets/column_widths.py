"""How columns that share a table's spare width divide it, by what their values need. Pure."""

from __future__ import annotations


def share(room: int, shared: dict[str, tuple[int, int]], needs: dict[str, int]) -> dict[str, int]:
    """Widths for the `shared` columns in `room` cells: each starts at its smallest; the next cell
    goes to the column whose widest value is cut the most (up to its largest worth competing
    for), so one column is not cut while another has blank cells; room nobody needs goes to the
    first column."""
    widths = {key: low for key, (low, _) in shared.items()}
    room -= sum(widths.values())
    first = next(iter(shared), None)
    while room > 0 and first is not None:
        cut = {key: min(needs.get(key, 0), high) - widths[key] for key, (_, high) in shared.items()}
        worst = max(cut, key=lambda key: cut[key])
        if cut[worst] <= 0:
            widths[first] += room
            break
        widths[worst] += 1
        room -= 1
    return widths
