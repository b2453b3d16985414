"""Base and RAFA players against simulated models: play strength, learning, and bad answers."""

from __future__ import annotations

import asyncio
import json

import pytest

from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.tictactoe import prompts as P
from rafa_core.tictactoe.game import Board, replay
from rafa_core.tictactoe.match import play_game
from rafa_core.tictactoe.oracle import OracleErrors, oracle_llm
from rafa_core.tictactoe.players import (
    MAX_RETRIES,
    BasePlayer,
    LearnedState,
    RAFAOptions,
    RAFAPlayer,
    prompt_examples,
    seed_examples,
)

IMPROVED = RAFAOptions.improved()


def play(x, o, *, session="t", learn=False):
    return asyncio.run(play_game({"X": x, "O": o}, session=session, learn=learn))


def garbage(text, request):
    return "I would rather talk about the weather."


@pytest.mark.parametrize("options", [IMPROVED, RAFAOptions()], ids=["improved", "original"])
def test_rafa_with_oracle_models_never_loses_to_a_random_x(options):
    learned = LearnedState()  # shared by the 50 games, as in one evaluation
    o = RAFAPlayer(oracle_llm(0.0), "O", breadth=3, learned=learned, options=options)
    results, games = [], set()
    for game in range(50):
        x = BasePlayer(oracle_llm(1.0, seed=game), "X")  # every move a random empty cell
        record = play(x, o, session=f"g{game}")
        assert replay(record.moves) == record.result
        results.append(record.result)
        games.add(tuple(record.moves))
    assert "X" not in results
    assert results.count("O") > 25  # and it beats a random player most of the time
    assert len(games) > 10  # the random X really varied the games


@pytest.mark.parametrize("breadth", [2, 3])
def test_rafa_with_oracle_models_ties_a_minimax_x(breadth):
    for game in range(3):
        x = BasePlayer(oracle_llm(0.0, seed=game), "X")
        o = RAFAPlayer(oracle_llm(0.0), "O", breadth=breadth)
        assert play(x, o, session=f"g{game}").result == "Tie"


def test_base_oracle_x_beats_a_random_o_or_ties():
    for game in range(5):
        x = BasePlayer(oracle_llm(0.0), "X")
        o = BasePlayer(oracle_llm(1.0, seed=game), "O")
        assert play(x, o, session=f"g{game}").result in ("X", "Tie")


def test_noisy_dynamics_is_corrected_by_a_training_game():
    noisy = oracle_llm(OracleErrors(dynamics=1.0))  # every unseen board prediction is wrong
    o = RAFAPlayer(noisy, "O", breadth=2, max_depth=1)

    def predict(board, role, move):
        return asyncio.run(o.model(session=None).dynamics(board, role, move))

    first = Board()
    assert predict(first, "X", 1) != first.play(1, "X")
    x = BasePlayer(oracle_llm(0.0), "X")
    record = play(x, o, learn=True)
    learned = o.learned.memory.examples_for("dynamics")
    assert learned, "the mispredictions were not kept"
    assert any("dynamics" in t["learning"]["O"]["added_examples"] for t in record.transcript)
    # Every real transition of the game is now predicted right.
    board = Board()
    for role, position in record.moves:
        assert predict(board, role, position) == board.play(position, role)
        board = board.play(position, role)
    assert board.result() == record.result
    assert o.learned.cache.version > 0  # the search cache was marked stale


def test_learned_examples_reach_the_prompts():
    o = RAFAPlayer(oracle_llm(OracleErrors(opponent=1.0)), "O", breadth=2, max_depth=1)
    x = BasePlayer(oracle_llm(0.0), "X")
    play(x, o, learn=True)
    opponent_examples = o.learned.memory.examples_for("opponent")
    assert opponent_examples
    example = opponent_examples[-1]
    prompt = P.opponent_prompt(Board.from_key(example["board"]), "X", o.model(None).examples("opponent"))
    assert P.opponent_block(Board.from_key(example["board"]), "X", example["move"]) in prompt[-1]["content"]


def test_reflection_and_plan_feed_the_proposer():
    o = RAFAPlayer(oracle_llm(0.0), "O", breadth=2, max_depth=1, options=IMPROVED)
    record = play(BasePlayer(oracle_llm(0.0), "X"), o, learn=True)
    assert record.reflections["O"]["lessons"] and o.learned.plan
    assert len(o.learned.memory.trials) == 1
    prompt = P.propose_prompt(Board(), "O", 2, o.learned.plan)
    assert o.learned.plan in prompt[-1]["content"]
    restored = LearnedState.from_json(o.learned.to_json())
    assert restored.plan == o.learned.plan and restored.memory.trials == o.learned.memory.trials


def test_no_learning_in_evaluation_games():
    o = RAFAPlayer(oracle_llm(OracleErrors(dynamics=1.0)), "O", breadth=2, max_depth=1)
    play(BasePlayer(oracle_llm(0.0), "X"), o, learn=False)
    assert o.learned.memory.examples == {} and o.learned.plan == ""


def test_a_model_that_never_names_an_empty_cell_falls_back_and_the_game_ends():
    calls = []

    def never_legal(text, request):
        calls.append(text)
        return "I choose position 0, or maybe ten."

    x = BasePlayer(ScriptedLLM(never_legal), "X")
    o = BasePlayer(oracle_llm(0.0), "O")
    record = play(x, o)
    x_moves = [t for t in record.transcript if t["role"] == "X"]
    assert x_moves and all(t["fallback"] for t in x_moves)
    assert all(len(t["decision"]["attempts"]) == MAX_RETRIES + 1 for t in x_moves)
    assert len(calls) == (MAX_RETRIES + 1) * len(x_moves)
    assert "The empty positions are" in calls[1]  # the correction was sent
    assert replay(record.moves) == record.result


def test_an_occupied_cell_is_corrected_then_accepted():
    def occupied_then_free(text, request):
        return "4" if "not empty" in text else "5"

    board = Board.from_moves([("X", 5)])
    player = BasePlayer(ScriptedLLM(occupied_then_free), "O")
    decision = asyncio.run(player.choose(board, "t"))
    assert decision.position == 4 and not decision.fallback
    assert [a["legal"] for a in decision.log["attempts"]] == [[], [4]]


def test_garbage_everywhere_still_ends_every_game():
    llm = ScriptedLLM(garbage)
    for learn in (False, True):
        x = BasePlayer(llm, "X")
        o = RAFAPlayer(llm, "O", breadth=3)
        record = play(x, o, learn=learn)
        assert replay(record.moves) == record.result
        assert all(t["fallback"] for t in record.transcript)


@pytest.mark.parametrize(
    "answer",
    [
        "X | O | 3\n---------\n4 | O | 6\n---------\n7 | 8 | 9",  # X moved but an O appeared
        "X | 2 | 3\n---------\n4 | O | 6\n---------\n7 | 8 | 9",  # nothing changed
        "X | 2 | 3\n4 | O",  # not a board
        "",
    ],
)
def test_malformed_predicted_boards_are_no_prediction(answer):
    model = RAFAPlayer(ScriptedLLM(lambda t, r: answer), "O", breadth=2).model(None)
    board = Board.from_moves([("X", 1), ("O", 5)])
    assert asyncio.run(model.dynamics(board, "X", 9)) is None
    assert model.log and model.log[-1]["prediction"] is None


@pytest.mark.parametrize(
    "answer, verdict",
    [
        ("row 1: three X\nWinner: X", "X"),
        ("Winner: O", "O"),
        ("Winner: none", "none"),
        ("Winner: X and O", None),
        ("Winner: probably", None),
        ("", None),
    ],
)
def test_winner_answers(answer, verdict):
    assert P.parse_winner(answer) == verdict
    model = RAFAPlayer(ScriptedLLM(lambda t, r: answer), "O", breadth=2).model(None)
    assert asyncio.run(model.winner(Board())) == verdict
    if verdict is None:  # an unreadable verdict is no win for anybody
        assert asyncio.run(model.outcome(Board())) not in (1.0, -1.0)


@pytest.mark.parametrize(
    "text, expected",
    [("5", 5), ("I'd play 7, then 3", 7), ("position zero", None), ("", None), ("0", None)],
)
def test_first_digit_is_the_move(text, expected):
    assert P.first_position(text) == expected


def test_proposals_keep_only_distinct_digits_of_the_first_line():
    assert P.position_list("5, 1, 5, 9\n3") == [5, 1, 9]
    assert P.position_list("none") == []


def test_availability_answers():
    assert P.parse_empty_positions("Empty positions: 2, 7") == frozenset({2, 7})
    assert P.parse_empty_positions("none") == frozenset()
    assert P.parse_empty_positions("hmm") is None


# -- the original's behaviour by default (tictactoe/README.md, "Differences from the original") --
def proposer_prompts(llm_log):
    return [text for text in llm_log if P.PROPOSE_TASK in text]


def test_by_default_the_plan_stays_empty_and_never_reaches_the_proposer():
    seen = []
    rules = oracle_llm(0.0)

    def spy(text, request):
        seen.append(text)
        return rules.rule(text, request)

    o = RAFAPlayer(ScriptedLLM(spy), "O", breadth=2, max_depth=1)
    first = play(BasePlayer(oracle_llm(0.0), "X"), o, learn=True, session="g0")
    assert first.reflections["O"]["lessons"] and "plan" not in first.reflections["O"]  # T1: reflection only
    assert o.learned.plan == "" and not any(P.PLAN_TASK in t for t in seen)
    play(BasePlayer(oracle_llm(0.0), "X"), o, learn=True, session="g1")
    assert proposer_prompts(seen) and not any("improvement plan" in t for t in proposer_prompts(seen))
    # Reflecting changes no prompt of the search, so its cache stays fresh (as in the original).
    version = o.learned.cache.version
    asyncio.run(o.end_game(first.moves, Board.from_moves(first.moves), first.result))
    assert o.learned.cache.version == version


def test_by_default_equal_values_go_to_the_highest_cell():
    # X has two in a row on 1-2; O must block at 3, else X wins.  Among equal values the
    # original takes the highest-numbered cell, the improved player the first proposed.
    def proposals_then_oracle(text, request):
        if P.PROPOSE_TASK in text:
            return "7, 8"  # neither blocks: both lose, values equal
        return rules.rule(text, request)

    rules = oracle_llm(0.0)
    board = Board.from_moves([("X", 1), ("O", 5), ("X", 2)])
    for options, expected in ((RAFAOptions(), 8), (IMPROVED, 7)):
        o = RAFAPlayer(ScriptedLLM(proposals_then_oracle), "O", breadth=2, options=options)
        decision = asyncio.run(o.choose(board, "t"))
        values = [c["value"] for c in decision.log["search"]["candidates"]]
        assert values == [-1.0, -1.0] and decision.position == expected


def test_by_default_every_learned_example_is_shown():
    learned = [{"board": f"{i}", "n": i} for i in range(40)]
    shown = prompt_examples(learned, "opponent", None)
    assert shown == learned  # the opponent model has no seed examples
    capped = prompt_examples(learned, "winner", 16)
    assert capped == seed_examples()["winner"] + learned[-16:]
    assert prompt_examples(learned, "opponent", 0) == []


def test_by_default_the_availability_model_is_not_learned():
    errors = OracleErrors(availability=1.0)  # every list of empty cells misses one
    for options, learns in ((RAFAOptions(), False), (IMPROVED, True)):
        o = RAFAPlayer(oracle_llm(errors), "O", breadth=2, max_depth=1, options=options)
        play(BasePlayer(oracle_llm(0.0), "X"), o, learn=True)
        assert bool(o.learned.memory.examples_for("availability")) is learns


def test_the_search_cache_and_answers_survive_a_save_and_load():
    o = RAFAPlayer(oracle_llm(0.0), "O", breadth=2)
    board = Board.from_moves([("X", 5)])
    first = asyncio.run(o.choose(board, "t"))
    saved = LearnedState.from_json(json.loads(json.dumps(o.learned.to_json())))
    assert saved.cache.fresh_count() == o.learned.cache.fresh_count() > 0
    assert saved.answers.snapshot() == o.learned.answers.snapshot()

    def refuse(text, request):
        raise AssertionError("asked again: " + text[:80])

    again = RAFAPlayer(ScriptedLLM(refuse), "O", breadth=2, learned=saved)
    assert asyncio.run(again.choose(board, "t")).position == first.position
