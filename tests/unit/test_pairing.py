from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parbench.controller.run.pairing import Assignment, Pairing, PairingError, cross_node

counts_lists = st.lists(st.integers(min_value=1, max_value=8), min_size=2, max_size=50)


@st.composite
def dominated_lists(draw: st.DrawFn) -> list[int]:
    """One node with more than half of all clients, anywhere in the order."""
    others = draw(st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=6))
    big = sum(others) + draw(st.integers(min_value=1, max_value=8))
    at = draw(st.integers(min_value=0, max_value=len(others)))
    return [*others[:at], big, *others[at:]]


def as_mapping(counts: list[int]) -> dict[str, int]:
    return {f"n{i}": c for i, c in enumerate(counts)}


def pairs(pairing: Pairing) -> list[tuple[str, int, str, int]]:
    return [
        (a.reader_node, a.reader_client, a.source_node, a.source_client)
        for a in pairing.assignments
    ]


@given(st.one_of(counts_lists, dominated_lists()))
def test_invariants(counts: list[int]) -> None:
    clients = as_mapping(counts)
    pairing = cross_node(clients)
    files = [(nid, cid) for nid, n in clients.items() for cid in range(n)]
    total, largest = len(files), max(counts)

    # every reader exactly once, in reader order, with a source that exists
    assert [(a.reader_node, a.reader_client) for a in pairing.assignments] == files
    reads = Counter((a.source_node, a.source_client) for a in pairing.assignments)
    assert set(reads) <= set(files)
    # nobody reads a file of its own node
    assert all(a.reader_node != a.source_node for a in pairing.assignments)

    if 2 * largest <= total:
        assert all(reads[f] == 1 for f in files)
        assert pairing.complete
    else:
        # the large node's readers can only read the others' files, and the others can
        # read at most as many of its files as there are of them
        assert len(reads) == 2 * (total - largest) == total - (largest - (total - largest))
        assert not pairing.complete

    # unread / read_twice agree with the assignments
    assert pairing.unread == tuple(f for f in files if reads[f] == 0)
    assert pairing.read_twice == tuple((*f, reads[f]) for f in files if reads[f] > 1)
    assert len(pairing.unread) == total - len(reads)


@given(st.integers(min_value=2, max_value=50), st.integers(min_value=1, max_value=8))
def test_equal_counts_rotate_with_same_client(nodes: int, count: int) -> None:
    pairing = cross_node(as_mapping([count] * nodes))
    for a in pairing.assignments:
        i = int(a.reader_node[1:])
        assert a.source_node == f"n{(i + 1) % nodes}"
        assert a.source_client == a.reader_client


@given(counts_lists)
def test_deterministic(counts: list[int]) -> None:
    assert cross_node(as_mapping(counts)) == cross_node(as_mapping(counts))


def test_unequal_counts_example() -> None:
    assert pairs(cross_node({"a": 3, "b": 2, "c": 1})) == [
        ("a", 0, "b", 0),
        ("a", 1, "b", 1),
        ("a", 2, "c", 0),
        ("b", 0, "a", 0),
        ("b", 1, "a", 1),
        ("c", 0, "a", 2),
    ]


def test_largest_group_first_in_layout() -> None:
    # b is largest: it is laid out first and reads what follows it
    assert pairs(cross_node({"a": 1, "b": 2, "c": 1})) == [
        ("a", 0, "b", 0),
        ("b", 0, "a", 0),
        ("b", 1, "c", 0),
        ("c", 0, "b", 1),
    ]


def test_dominant_node() -> None:
    pairing = cross_node({"a": 1, "big": 5, "c": 1})
    assert pairs(pairing) == [
        ("a", 0, "big", 0),
        ("big", 0, "a", 0),
        ("big", 1, "c", 0),
        ("big", 2, "a", 0),
        ("big", 3, "c", 0),
        ("big", 4, "a", 0),
        ("c", 0, "big", 1),
    ]
    assert pairing.unread == (("big", 2), ("big", 3), ("big", 4))
    assert pairing.read_twice == (("a", 0, 3), ("c", 0, 2))
    assert pairing.describe() == [
        "cross-node read: 7 clients on 3 nodes, each reads one file written on another node",
        "one node has more than half of all clients, so not every file can be read from"
        " another node",
        "3 files not read: big/2, big/3, big/4",
        "2 files read more than once: a/0 (3x), c/0 (2x)",
    ]


def test_describe_complete() -> None:
    assert cross_node({"n0": 2, "n1": 2}).describe() == [
        "cross-node read: 4 clients on 2 nodes, each reads one file written on another node",
        "every written file is read exactly once",
    ]


def test_for_node_orders_by_reader_client() -> None:
    pairing = Pairing(
        assignments=(
            Assignment("x", 1, "y", 0),
            Assignment("y", 0, "x", 0),
            Assignment("x", 0, "y", 1),
        )
    )
    assert pairing.for_node("x") == (Assignment("x", 0, "y", 1), Assignment("x", 1, "y", 0))
    assert pairing.for_node("z") == ()


@pytest.mark.parametrize("clients", [{}, {"n0": 4}])
def test_fewer_than_two_nodes(clients: dict[str, int]) -> None:
    with pytest.raises(PairingError, match="at least two nodes.*--mode same --src PATH"):
        cross_node(clients)


@pytest.mark.parametrize("count", [0, -1, True, 1.5])
def test_bad_counts(count: object) -> None:
    with pytest.raises(PairingError, match="'b': expected a client count >= 1"):
        cross_node({"a": 1, "b": count})  # type: ignore[dict-item]
