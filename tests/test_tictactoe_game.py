"""The Tic-Tac-Toe rules, board text and replay, checked against independent computations."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from rafa_core.tictactoe.game import (
    Board,
    IllegalMove,
    TicTacToeEnv,
    is_reachable,
    parse_board,
    replay,
)
from rafa_core.tictactoe.match import play_game
from rafa_core.tictactoe.oracle import Minimax
from rafa_core.tictactoe.players import MoveDecision

# Independent winner check: on the magic square every line, and only a line, sums to 15.
MAGIC = (2, 7, 6, 9, 5, 1, 4, 3, 8)


def magic_winner(cells: tuple[str, ...]) -> str | None:
    for role in ("X", "O"):
        values = [MAGIC[i] for i, c in enumerate(cells) if c == role]
        if any(sum(trio) == 15 for trio in itertools.combinations(values, 3)):
            return role
    return None


def reachable_positions() -> set[Board]:
    """Every position of a real game, by playing every legal move from the empty board."""
    seen = {Board()}
    frontier = [Board()]
    while frontier:
        board = frontier.pop()
        if board.is_over():
            continue
        for position in board.empty_positions():
            child = board.play(position, board.to_move())
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return seen


@pytest.fixture(scope="module")
def positions() -> set[Board]:
    return reachable_positions()


def test_there_are_5478_legal_positions(positions):
    assert len(positions) == 5478


def test_every_legal_position_has_the_independently_checked_winner(positions):
    for board in positions:
        assert board.winner() == magic_winner(board.cells), board.render()
        expected = board.winner() or ("Tie" if all(board.cells) else None)
        assert board.result() == expected


def test_reachability_matches_enumeration_over_all_boards(positions):
    for cells in itertools.product(("", "X", "O"), repeat=9):
        board = Board(cells)
        assert is_reachable(board) == (board in positions), board.render()


def test_render_is_three_rows_with_nine_dash_separators():
    board = Board.from_moves([("X", 1), ("O", 5), ("X", 9)])
    assert board.render() == "X | 2 | 3\n---------\n4 | O | 6\n---------\n7 | 8 | X"


def test_every_position_survives_render_and_parse(positions):
    for board in positions:
        assert parse_board(board.render()) == board
        assert Board.from_key(board.key()) == board


@pytest.mark.parametrize(
    "text",
    [
        "The new board is:\n```\nX | 2 | 3\n---------\n4 | O | 6\n---------\n7 | 8 | X\n```",
        "  x|2|3\n  4|o|6\n  7|8|x",
        "| X | 2 | 3 |\n|---|---|---|\n| 4 | O | 6 |\n| 7 | 8 | X |",
        "X | . | .\n---------\n. | O | .\n---------\n. | . | X",
    ],
)
def test_parse_is_tolerant_of_formatting(text):
    assert parse_board(text) == Board.from_moves([("X", 1), ("O", 5), ("X", 9)])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no board here",
        "X | 2 | 3\n---------\n4 | O | 6",  # two rows
        "X | 5 | 3\n4 | O | 6\n7 | 8 | 9",  # a wrong number in a cell
        "X | 2 | 3 | 4\n5 | O | 6\n7 | 8 | 9",  # four cells
        "X | Z | 3\n4 | O | 6\n7 | 8 | 9",
        "X | 2 | 3\n\n4 | O | 6\n\n7 | 8 | 9",  # rows not together
    ],
)
def test_malformed_boards_parse_to_none(text):
    assert parse_board(text) is None


def test_parse_board_never_raises_on_random_text():
    rng = random.Random(0)
    alphabet = "XO123456789|-. \n"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        board = parse_board(text)
        assert board is None or isinstance(board, Board)


def random_game(rng: random.Random) -> tuple[list[tuple[str, int]], str]:
    board, moves = Board(), []
    while not board.is_over():
        role = board.to_move()
        position = rng.choice(board.empty_positions())
        board = board.play(position, role)
        moves.append((role, position))
    return moves, magic_winner(board.cells) or "Tie"


def test_generated_random_games_replay_to_their_winner():
    rng = random.Random(7)
    for _ in range(500):
        moves, winner = random_game(rng)
        assert replay(moves) == winner
        assert replay([list(m) for m in moves]) == winner  # the JSON form [role, position]


def test_minimax_self_play_is_a_tie_and_replays():
    minimax = Minimax()
    board, moves = Board(), []
    while not board.is_over():
        role = board.to_move()
        position = minimax.ranked_moves(board)[0]
        board = board.play(position, role)
        moves.append((role, position))
    assert replay(moves) == "Tie" == board.result()


@pytest.mark.parametrize(
    "moves",
    [
        [("O", 1)],  # O does not move first
        [("X", 1), ("O", 1)],  # taken cell
        [("X", 10)],  # no such cell
        [("X", 1), ("O", 4), ("X", 2), ("O", 5), ("X", 3), ("O", 6)],  # a move after X won
        [("X", 1), ("O", 2)],  # unfinished
    ],
)
def test_replay_rejects_impossible_games(moves):
    with pytest.raises(IllegalMove):
        replay(moves)


def test_env_is_ground_truth_and_rejects_illegal_moves():
    env = TicTacToeEnv()
    board, info = env.reset()
    assert board == Board() and info == {}
    board, reward, done, info = env.step(5)
    assert board.cell(5) == "X" and reward == 0 and not done and info["mover"] == "X" and info["before"] == Board()
    with pytest.raises(IllegalMove):
        env.step(5)
    with pytest.raises(IllegalMove):
        env.step(0)
    for position in (1, 2, 9):  # O 1, X 2, O 9
        env.step(position)
    board, reward, done, info = env.step(8)  # X: 2-5-8
    assert done and reward == 1.0 and info["result"] == "X"
    with pytest.raises(IllegalMove):
        env.step(3)


class FirstEmptyCell:
    """The smallest agent the game can drive: act / observe / end_episode, nothing learned."""

    def __init__(self, role):
        self.role, self.decision, self.seen, self.ended = role, None, [], []

    async def act(self, board, info):
        self.decision = MoveDecision(board.empty_positions()[0], log={"session": info["session"]})
        return self.decision.position

    async def observe(self, move, after, reward, done, info):
        self.seen.append((info["mover"], move, info["before"].key(), after.key(), reward, done))
        return {"saw": move} if info["mover"] != self.role else None

    async def end_episode(self, record):
        self.ended.append((record.result, record.final.key()))
        return {"lessons": f"{self.role}: {record.result}"}


def test_the_game_drives_two_agents_through_act_observe_and_end_episode():
    x, o = FirstEmptyCell("X"), FirstEmptyCell("O")
    record = asyncio.run(play_game({"X": x, "O": o}, session="s1", learn=True))
    # X 1, O 2, X 3, O 4, X 5, O 6, X 7: X wins on the diagonal 3-5-7.
    assert record.moves == [("X", 1), ("O", 2), ("X", 3), ("O", 4), ("X", 5), ("O", 6), ("X", 7)]
    assert record.result == "X" and record.transcript[0]["decision"] == {"session": "s1"}
    assert x.seen == o.seen and len(x.seen) == 7 and x.seen[-1][4:] == (1.0, True)
    assert x.seen[1][:3] == ("O", 2, Board.from_moves([("X", 1)]).key())
    assert record.transcript[1]["learning"] == {"X": {"saw": 2}}  # O's move, seen by X
    assert x.ended == o.ended == [("X", record.final.key())]
    assert record.reflections == {"X": {"lessons": "X: X"}, "O": {"lessons": "O: X"}}
    # Without learning nobody observes or reflects.
    x2, o2 = FirstEmptyCell("X"), FirstEmptyCell("O")
    assert asyncio.run(play_game({"X": x2, "O": o2}, session="s2", learn=False)).moves == record.moves
    assert x2.seen == o2.seen == x2.ended == []
