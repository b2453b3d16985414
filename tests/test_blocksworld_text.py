"""The text layer: canonical rendering, tolerant parsing, change sentences, never raising."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rafa_core.blocksworld.domain import (
    COLOURS, Action, all_states, applicable_actions, apply, is_consistent, pick_up, stack, state_from_stacks,
)
from rafa_core.blocksworld.text import (
    parse_action,
    parse_state,
    read_world_model_answer,
    render_action,
    render_change,
    render_state,
)


@pytest.mark.parametrize("n", [4, 5])
def test_render_parse_round_trip_for_every_state(n):
    blocks = COLOURS[:n]
    states = all_states(blocks)
    assert len(states) == {4: 125, 5: 866}[n]
    for state in states:
        text = render_state(state)
        assert parse_state(text, blocks) == state, text
        assert parse_state(text) == state  # without being told the blocks


def test_rendering_is_canonical():
    s = state_from_stacks([["red", "blue"], ["orange"]])
    assert render_state(s) == (
        "the blue block is clear, the orange block is clear, the hand is empty, "
        "the blue block is on top of the red block, the red block is on the table "
        "and the orange block is on the table"
    )
    assert render_state(frozenset(reversed(sorted(s)))) == render_state(s)


@pytest.mark.parametrize("n", [4, 5])
def test_change_sentences_give_the_simulators_next_state(n):
    checked = 0
    for state in all_states(COLOURS[:n]):
        for action in applicable_actions(state):
            after = apply(state, action)
            assert parse_action(render_action(action)) == action
            assert parse_action(str(action)) == action  # PDDL form
            prediction = read_world_model_answer(render_change(state, after), state)
            assert prediction.state == after and prediction.how == "change"
            checked += 1
    assert checked > 100


def test_tolerant_readings():
    s = state_from_stacks([["red", "blue"], ["orange"]])
    after = apply(s, pick_up("orange"))
    # Only what moved: the contradicted facts are dropped, the rest follows.
    assert read_world_model_answer(" The hand is now holding the orange block.", s).state == after
    # A whole state instead of a change.
    assert read_world_model_answer(render_state(after), s).state == after
    # Tags, capitals and "isn't" are fine.
    text = "[CHANGE] The Hand is now holding the orange block, the orange block isn't on the table anymore"
    assert read_world_model_answer(text, s).state == after
    assert parse_action("I will Stack the red block onto the blue block.") == stack("red", "blue")
    assert parse_action("(stack red blue)") == stack("red", "blue")


@pytest.mark.parametrize("text", [
    "", "   ", "nothing changes", "I don't know", "the hand is now holding the purple block",
    "the red block is now on top of the red block", "the hand is now holding the blue block",  # blue is covered
    "[STATE 1] the", "\x00\x01\x02", "now now now no longer", "the red block is now on the table and on the blue block",
])
def test_unusable_answers_are_invalid_not_errors(text):
    s = state_from_stacks([["red", "blue"], ["orange"]])
    prediction = read_world_model_answer(text, s)
    assert prediction.state is None and not prediction.valid and prediction.how == "unusable"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text):
    s = state_from_stacks([["red", "blue"], ["orange", "yellow"]])
    prediction = read_world_model_answer(text, s)
    # Unusable, or a physically possible state over the same blocks (never a half-read one).
    if prediction.state is None:
        assert prediction.how == "unusable" and not prediction.valid
    else:
        blocks = ("red", "blue", "orange", "yellow")
        assert prediction.how in {"change", "full state"} and is_consistent(prediction.state, blocks)
    action = parse_action(text)
    assert action is None or isinstance(action, Action)
    state = parse_state(text)
    assert state is None or isinstance(state, frozenset)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "the red block is now clear", "the hand is now empty", "the hand is now holding the blue block",
    "the orange block is no longer on the table", "the blue block is now on top of the yellow block",
    "the yellow block is no longer clear", "and", ",", "the red block is on the table", "nonsense",
]), max_size=8))
def test_mixed_clauses_never_give_impossible_states(parts):
    s = state_from_stacks([["red", "blue"], ["orange", "yellow"]])
    prediction = read_world_model_answer(" ".join(parts), s)
    if prediction.valid:
        assert is_consistent(prediction.state, COLOURS[:4])
