"""The `/` filter language (mltop.query): terms, fields, numbers, negation, hostile input."""

from __future__ import annotations


from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.model import JobState
from mltop.query import job_fields, parse, sort_value
from tests.conftest import fixed_clock
from tests.factories import job

NOW = fixed_clock()
FIELDS = set(job_fields(job("x", JobState.PENDING)).keys())


def keeps(text: str, j) -> bool:
    return parse(text, FIELDS).matches(job_fields(j, NOW))


def test_words_and_regexes_match_anywhere_case_insensitively():
    j = job("raysubmit_llama70b", JobState.RUNNING, name="llama-70b", owner="alice", gpus=8)
    assert keeps("", j) and keeps("LLAMA alice", j) and keeps("llama-7\\d+b", j) and keeps("^raysub", j)
    assert not keeps("llama bob", j)


def test_field_terms_look_only_in_their_field():
    j = job("x1", JobState.PENDING, name="alice-sweep", owner="bob", gpus=8)
    assert keeps("owner:bob", j) and not keeps("owner:alice", j)  # "alice" is in the name only
    assert keeps("user:BO", j)  # an alias, case-insensitive
    assert keeps("state:pend", j) and not keeps("state:running", j)


def test_numbers_compare_and_unknown_never_matches():
    big, small, unknown = (job("a", JobState.PENDING, gpus=8), job("b", JobState.PENDING, gpus=2),
                           job("c", JobState.PENDING, gpus=None))
    assert [keeps("gpus>4", j) for j in (big, small, unknown)] == [True, False, False]
    assert [keeps("gpus<=2", j) for j in (big, small, unknown)] == [False, True, False]
    assert [keeps("gpus=8", j) for j in (big, small, unknown)] == [True, False, False]
    assert [keeps("!gpus>4", j) for j in (big, small, unknown)] == [False, True, True]


def test_negation_inverts_one_term():
    run, wait = job("a", JobState.RUNNING, owner="alice"), job("b", JobState.PENDING, owner="alice")
    assert [keeps("!state:running", j) for j in (run, wait)] == [False, True]
    assert [keeps("alice !running", j) for j in (run, wait)] == [False, True]
    assert keeps("!", run)  # a lone "!" while typing keeps everything


def test_what_is_read_differently_is_said():
    query = parse("sweep[ colour:red gpus>many", FIELDS)
    assert any("matched as text" in note for note in query.notes)
    assert any("no field 'colour'" in note for note in query.notes)
    assert any("not a number" in note for note in query.notes)
    assert keeps("sweep[", job("a", JobState.PENDING, name="sweep[/lr=0.1]"))
    assert keeps("http://x", job("a", JobState.PENDING, name="see http://x"))  # not a field "http"


def test_wait_time_is_a_number_in_seconds():
    j = job("a", JobState.PENDING, submitted_min_ago=30)
    assert keeps("time>1200", j) and not keeps("time>3600", j)


def test_sorting_puts_unknown_last_and_numbers_as_numbers():
    values = [10.0, None, 9.0, "b", "A", float("nan")]
    ordered = sorted(values, key=sort_value)
    assert ordered[:2] == [9.0, 10.0] and ordered[2:4] == ["A", "b"]
    assert all(sort_value(v)[0] == 2 for v in ordered[4:])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=40))
def test_any_filter_text_is_total(text, name):
    """Whatever the user types (or pastes), parsing and matching never raise."""
    query = parse(text, FIELDS)
    query.matches(job_fields(job("a", JobState.PENDING, name=name, gpus=float("nan")), NOW))
