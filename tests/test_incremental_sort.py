"""IncrementalSort gives exactly what a full sort gives, refresh after refresh."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mltop.incremental_sort import IncrementalSort


@dataclass(frozen=True, eq=False)  # compared by identity, as the adapters' records are re-used
class Node:
    key: str
    free: int


def by_free(n: Node) -> tuple[int, str]:
    return (-n.free, n.key)


def test_matches_a_full_sort_as_records_change_come_and_go() -> None:
    rng = random.Random(7)
    nodes = [Node(f"n{i:04d}", rng.choice((0, 0, 1, 4, 8))) for i in range(600)]
    order = IncrementalSort(by_free)
    assert order(nodes) == sorted(nodes, key=by_free)
    for step in range(300):
        nodes = list(nodes)
        for _ in range(rng.randrange(0, 6)):  # a few nodes' pods moved: new records, same places
            i = rng.randrange(len(nodes))
            nodes[i] = Node(nodes[i].key, rng.choice((0, 2, 8)))
        if rng.random() < 0.1:
            nodes.pop(rng.randrange(len(nodes)))
        if rng.random() < 0.1:
            nodes.append(Node(f"new{step}", rng.choice((0, 8))))
        if rng.random() < 0.05:
            rng.shuffle(nodes)
        assert order(nodes) == sorted(nodes, key=by_free), step


def test_equal_keys_still_find_the_record_that_changed() -> None:
    """With a key that does not tell records apart the order of ties may differ from a full sort's,
    but no record is lost or doubled."""
    nodes = [Node(f"n{i}", 1) for i in range(50)]
    order = IncrementalSort(lambda n: -n.free)
    order(nodes)
    changed = list(nodes)
    changed[10] = Node("n10", 1)
    out = order(changed)
    assert sorted(map(id, out)) == sorted(map(id, changed))


def test_the_answer_is_a_new_list_each_time() -> None:
    nodes = [Node("a", 1), Node("b", 2)]
    order = IncrementalSort(by_free)
    first = order(nodes)
    first.append(Node("c", 3))
    assert order(nodes) == [nodes[1], nodes[0]]
