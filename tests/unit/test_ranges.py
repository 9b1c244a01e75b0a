"""Node ids listed compactly (controller/output/ranges.py): ``n[03-07,12]``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parbench.controller.output.ranges import compact, expand
from parbench.worker.protocol import NODE_ID


def test_consecutive_numbers_fold_into_ranges_in_natural_order() -> None:
    assert compact(["n12", "n05", "n03", "n07", "n04", "n06"]) == "n[03-07,12]"
    assert compact(["n10", "n2", "n1", "n3", "n9"]) == "n[1-3,9-10]"
    assert compact(["n3"]) == "n3" and compact([]) == ""


def test_prefixes_are_grouped_and_padding_kept() -> None:
    ids = ["rack2-n1", "n08", "n09", "n10", "rack2-n2", "gateway", "rack10-n1", "n8"]
    assert compact(ids) == "gateway, n[08-10,8], rack2-n[1-2], rack10-n1"
    assert sorted(expand(compact(ids))) == sorted(ids)


def test_an_unpadded_run_does_not_take_a_padded_number() -> None:
    assert compact(["n9", "n10", "n010", "n011"]) == "n[9-10,010-011]"
    assert expand("n[9-10,010-011]") == ["n9", "n10", "n010", "n011"]


_IDS = st.one_of(
    st.builds(
        lambda prefix, number, pad: f"{prefix}{str(number).zfill(pad)}",
        st.sampled_from(["n", "node-", "r1.n", "a_", "x9y"]),
        st.integers(0, 130),
        st.integers(0, 4),
    ),
    st.from_regex(NODE_ID, fullmatch=True),
)


@given(st.lists(_IDS, max_size=60))
def test_expanding_the_compact_form_gives_back_the_ids(ids: list[str]) -> None:
    text = compact(ids)
    back = expand(text)
    assert sorted(back) == sorted(set(ids))
    assert len(back) == len(set(ids))


@given(st.sets(st.integers(0, 200), min_size=1, max_size=50))
def test_numbers_are_ranges_that_do_not_touch(numbers: set[int]) -> None:
    text = compact(f"n{k}" for k in numbers)
    if len(numbers) == 1:
        return
    parts = text[2:-1].split(",")
    bounds = [(int(p.split("-")[0]), int(p.split("-")[-1])) for p in parts]
    assert bounds == sorted(bounds)
    assert all(b[0] > a[1] + 1 for a, b in zip(bounds, bounds[1:]))  # folded as far as can be
