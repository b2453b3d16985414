"""The two kinds of players: the base player (one prompt per move) and the RAFA player.

The RAFA player ("MPC" in the original) reasons for the future with four LLM-backed
models of the game — dynamics (the board after a move), opponent (the other side's
reply), winner (line-by-line check) and availability (the empty cells) — searched by
:class:`rafa_core.search.game.GameSearch`, and acts for now with the first move.  In
training games it learns: after every real transition it asks each model what it would
have predicted and, on a mismatch, adds the true example to that model's in-context
examples (marking the search cache stale); after each training game it reflects on the
game.  :class:`RAFAOptions` holds this project's changes to the original's MPC player, all
off by default (the paper's algorithm as the original code runs it); see tictactoe/README.md,
"Differences from the original".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from ..agent import Agent, RAFAAgent
from ..llm.base import BaseLLM, Messages
from ..llm.request_log import labelled
from ..llm.context import fit_examples
from ..llm.memo import Memo
from ..memory import Memory
from ..search.base import Plan
from ..search.game import DRAW, LOSS, WIN, GameSearch, StateCache
from . import prompts as P
from .game import Board, Role, other, parse_board

MAX_RETRIES = 3  # re-asks after an answer with no empty cell, before a random empty cell
IMPROVED_MAX_EXAMPLES = 16  # the example cap of --improved (the original showed all)
MODEL_KINDS = ("dynamics", "opponent", "winner", "availability")
# Answer lengths: enough for the format asked, short enough to stop a rambling model.
MOVE_TOKENS, BOARD_TOKENS, WINNER_TOKENS, TEXT_TOKENS = 24, 48, 200, 200
# A model's answer is one block, like its examples' (which are separated by blank lines).
END_OF_BLOCK = ["\n\n"]


@dataclass(frozen=True)
class RAFAOptions:
    """Our changes to the original's MPC player; the defaults are the original's behaviour."""

    improvement_plan: bool = False  # T1: write a plan after each training game, show it to the proposer
    prefer_first: bool = False  # T2: among equal values the first proposed move (original: the highest cell)
    learn_availability: bool = False  # T5: learn the availability model on a miss too (original: never)
    max_examples: int | None = None  # T7: learned examples per model in a prompt, most recent (None: all)

    @classmethod
    def improved(cls) -> "RAFAOptions":
        return cls(improvement_plan=True, prefer_first=True, learn_availability=True,
                   max_examples=IMPROVED_MAX_EXAMPLES)


@dataclass
class MoveDecision:
    position: int
    fallback: bool = False
    log: dict[str, Any] = field(default_factory=dict)


class Player(Agent[Board, int], Protocol):
    """An agent the game drives (:func:`rafa_core.tictactoe.match.play_game`):
    ``act(board, info)`` with ``info["session"]`` the game's name, ``observe`` every real
    transition (training games; ``info`` says who moved from which board), ``end_episode``
    with the :class:`~rafa_core.tictactoe.match.GameRecord` (training games).  ``decision``
    is the last move's decision, for the game's transcript."""

    role: Role
    decision: MoveDecision | None

    def state_json(self) -> dict[str, Any]: ...


async def ask(
    llm: BaseLLM, messages: Messages, temperature: float, max_tokens: int, stop: list[str] | None = None
) -> str:
    completions = await llm.generate(messages, temperature=temperature, max_tokens=max_tokens, stop=stop)
    return completions[0].text if completions else ""


Asker = Callable[[Messages, int], Awaitable[str]]


def fallback_rng(seed: int, session: str, board: Board) -> random.Random:
    # Seeded per game and position: a resumed run falls back to the same cell.
    return random.Random(f"{seed}|{session}|{board.key()}")


async def ask_for_positions(
    asker: Asker,
    messages: Messages,
    board: Board,
    parse: Callable[[str], list[int]],
    *,
    retries: int,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Ask until the answer names at least one empty cell; at most ``retries`` re-asks.

    Returns the legal positions of the accepted answer (empty if none) and every attempt.
    """
    attempts: list[dict[str, Any]] = []
    messages = list(messages)
    for _ in range(retries + 1):
        answer = await asker(messages, MOVE_TOKENS)
        named = parse(answer)
        legal = [p for p in named if board.is_legal(p)]
        attempts.append({"answer": answer, "named": named, "legal": legal})
        if legal:
            return legal, attempts
        bad = [p for p in named if not board.is_legal(p)]
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": P.correction(board, bad)}]
    return [], attempts


def first_only(text: str) -> list[int]:
    position = P.first_position(text)
    return [position] if position is not None else []


@dataclass
class BasePlayer:
    """One prompt per move; the first digit 1-9 of the answer is the move."""

    llm: BaseLLM
    role: Role
    temperature: float = 0.2
    max_retries: int = MAX_RETRIES
    seed: int = 0

    decision: MoveDecision | None = field(default=None, init=False)

    async def ask(self, messages: Messages, max_tokens: int) -> str:
        return await ask(self.llm, messages, self.temperature, max_tokens)

    # -- the agent protocol: it learns nothing ----------------------------------------------------
    async def act(self, board: Board, info: dict[str, Any]) -> int:
        self.decision = await self.choose(board, info["session"])
        return self.decision.position

    async def observe(self, move: int, after: Board, reward: float, done: bool, info: dict[str, Any]) -> None:
        return None

    async def end_episode(self, record: Any) -> None:
        return None

    async def choose(self, board: Board, session: str) -> MoveDecision:
        legal, attempts = await ask_for_positions(
            self.ask, P.move_prompt(board, self.role, session), board, first_only, retries=self.max_retries
        )
        if legal:
            return MoveDecision(legal[0], log={"attempts": attempts})
        position = fallback_rng(self.seed, session, board).choice(board.empty_positions())
        return MoveDecision(position, fallback=True, log={"attempts": attempts, "fallback": position})

    def state_json(self) -> dict[str, Any]:
        return {"kind": "base", "role": self.role, "model": self.llm.name}


# -- the RAFA player's learned state ----------------------------------------------------------
def seed_examples() -> dict[str, list[dict[str, Any]]]:
    """A few starting examples per model, generated from the rules (the opponent has none)."""
    before = Board.from_moves([("X", 5), ("O", 1)])
    x_won = Board.from_moves([("X", 1), ("O", 4), ("X", 5), ("O", 7), ("X", 9)])
    open_board = Board.from_moves([("X", 3), ("O", 5), ("X", 7)])
    return {
        "dynamics": [{"before": before.key(), "role": "X", "move": 9, "after": before.play(9, "X").key()}],
        "opponent": [],
        "winner": [
            {"board": x_won.key(), "reasoning": P.winner_reasoning(x_won)},
            {"board": open_board.key(), "reasoning": P.winner_reasoning(open_board)},
        ],
        "availability": [{"board": open_board.key(), "empties": open_board.empty_positions()}],
    }


def prompt_examples(learned: list[dict[str, Any]], kind: str, cap: int | None) -> list[dict[str, Any]]:
    """The in-context examples a ``kind`` model's prompt shows: the seed examples, then the
    learned ones in the order they were learned (all of them, as the original; with ``cap``
    only the most recent ``cap``).  Every model prompt gets its examples here, so a limit
    on what fits in a context window belongs here too."""
    if cap is None:
        kept = learned
    else:
        kept = learned[-cap:] if cap > 0 else []
    return seed_examples()[kind] + kept


def answer_key(messages: Messages, max_tokens: int, stop: list[str] | None) -> str:
    text = json.dumps([messages, max_tokens, stop], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class LearnedState:
    """What a RAFA player carries between games: examples, lessons, plan, its search cache
    (the original's ``memory``) and its models' answers since the last model update.

    All of it is saved after every game and restored on resume, so a resumed run asks no
    question that the uninterrupted run would have had answered already."""

    memory: Memory = field(default_factory=Memory)
    plan: str = ""
    cache: StateCache[Board, int] = field(default_factory=StateCache)
    # The models' answers by request: one imagined question is asked once, however many
    # search paths (and the learning check after the real move) reach it, and concurrent
    # paths share the ask in flight. Forgotten when a model changes.
    answers: Memo[str, str] = field(default_factory=Memo)

    def model_updated(self) -> None:
        self.cache.mark_stale()
        self.answers.invalidate()

    def to_json(self) -> dict[str, Any]:
        return {
            "memory": self.memory.to_json(),
            "plan": self.plan,
            "search_cache": self.cache.to_json(Board.key),
            "answers": self.answers.snapshot(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LearnedState":
        return cls(
            memory=Memory.from_json(data.get("memory", {})),
            plan=str(data.get("plan", "")),
            cache=StateCache.from_json(data.get("search_cache", []), Board.from_key),
            answers=Memo({str(k): str(v) for k, v in data.get("answers", {}).items()}),
        )


@dataclass
class TicTacToeModel:
    """The RAFA player's LLM-backed model of the game, seen from ``role`` (a TwoPlayerModel)."""

    llm: BaseLLM
    role: Role
    breadth: int
    learned: LearnedState
    temperature: float = 0.2
    session: str | None = None
    options: RAFAOptions = field(default_factory=RAFAOptions)
    root: Board | None = None  # the real board: the proposer retries harder there
    max_retries: int = MAX_RETRIES
    log: list[dict[str, Any]] = field(default_factory=list)

    async def ask(self, messages: Messages, max_tokens: int, stop: list[str] | None = None) -> str:
        key = answer_key(messages, max_tokens, stop)
        return await self.learned.answers.get(key, lambda: ask(self.llm, messages, self.temperature, max_tokens, stop))

    # -- examples --------------------------------------------------------------------------------
    def examples(self, kind: str) -> list[dict[str, Any]]:
        return prompt_examples(self.learned.memory.examples_for(kind), kind, self.options.max_examples)

    # -- the four models ---------------------------------------------------------------------------
    async def dynamics(self, before: Board, mover: Role, move: int) -> Board | None:
        answer = await self.ask_with_examples("dynamics", lambda ex: P.dynamics_prompt(before, mover, move, ex), BOARD_TOKENS)
        after = parse_board(answer)
        # A well-formed prediction adds exactly one mark of the mover; anything else is malformed.
        if after is None or not _one_more_mark(before, after, mover):
            self.log.append({"model": "dynamics", "board": before.key(), "move": move, "answer": answer, "prediction": None})
            return None
        return after

    async def opponent(self, board: Board) -> int | None:
        mover = other(self.role)
        answer = await self.ask_with_examples("opponent", lambda ex: P.opponent_prompt(board, mover, ex), MOVE_TOKENS)
        move = P.first_position(answer)
        if move is None or not board.is_legal(move):
            self.log.append({"model": "opponent", "board": board.key(), "answer": answer, "prediction": None})
            return None
        return move

    async def winner(self, board: Board) -> str | None:
        answer = await self.ask_with_examples("winner", lambda ex: P.winner_prompt(board, ex), WINNER_TOKENS)
        verdict = P.parse_winner(answer)
        if verdict is None:
            self.log.append({"model": "winner", "board": board.key(), "answer": answer[-200:], "prediction": None})
        return verdict

    async def availability(self, board: Board) -> frozenset[int] | None:
        answer = await self.ask_with_examples("availability", lambda ex: P.availability_prompt(board, ex), MOVE_TOKENS)
        empties = P.parse_empty_positions(answer)
        if empties is None:
            self.log.append({"model": "availability", "board": board.key(), "answer": answer, "prediction": None})
        return empties

    async def ask_with_examples(self, kind: str, build: Callable[[list[dict[str, Any]]], Messages], max_tokens: int) -> str:
        """Ask ``kind``'s model with its examples.  A prompt that would not fit the LLM's
        context window leaves out the oldest learned examples (logged); seeds always stay."""
        prompt, left_out = fit_examples(self.llm, build, self.examples(kind), max_tokens,
                                        keep_first=len(seed_examples()[kind]))
        note = {"model": kind, "examples_left_out": left_out, "why": "context window"}
        if left_out and note not in self.log:  # once per decision, not per imagined line
            self.log.append(note)
        return await self.ask(prompt, max_tokens, END_OF_BLOCK)

    # -- TwoPlayerModel ------------------------------------------------------------------------------
    async def propose(self, board: Board) -> list[int]:
        retries = self.max_retries if board == self.root else 1
        plan = self.learned.plan if self.options.improvement_plan else ""
        legal, attempts = await ask_for_positions(
            self.ask, P.propose_prompt(board, self.role, self.breadth, plan, self.session), board,
            P.position_list, retries=retries,
        )
        if board == self.root:
            self.log.append({"model": "proposer", "board": board.key(), "attempts": attempts})
        return legal[: self.breadth]

    async def predict_own(self, board: Board, move: int) -> Board | None:
        return await self.dynamics(board, self.role, move)

    async def predict_reply(self, board: Board) -> tuple[int, Board] | None:
        move = await self.opponent(board)
        if move is None:
            return None
        after = await self.dynamics(board, other(self.role), move)
        return (move, after) if after is not None else None

    async def outcome(self, board: Board) -> float | None:
        verdict = await self.winner(board)
        if verdict == self.role:
            return WIN
        if verdict == other(self.role):
            return LOSS
        empties = await self.availability(board)
        return DRAW if empties == frozenset() else None


def _one_more_mark(before: Board, after: Board, mover: Role) -> bool:
    return (
        after.cells.count(mover) == before.cells.count(mover) + 1
        and after.cells.count(other(mover)) == before.cells.count(other(mover))
    )


@dataclass
class RAFAPlayer:
    """Plans each move by searching its learned models; learns from real play in training."""

    llm: BaseLLM
    role: Role
    breadth: int
    learned: LearnedState = field(default_factory=LearnedState)
    temperature: float = 0.2
    max_depth: int | None = None
    options: RAFAOptions = field(default_factory=RAFAOptions)
    max_retries: int = MAX_RETRIES
    seed: int = 0

    def model(self, session: str | None, root: Board | None = None) -> TicTacToeModel:
        return labelled(TicTacToeModel(  # its LLM calls are labelled proposer / world model / critic
            self.llm, self.role, self.breadth, self.learned, self.temperature, session,
            self.options, root, self.max_retries,
        ))

    def __post_init__(self) -> None:
        # The original took max over (value, cell): among equal values the highest cell.
        prefer = None if self.options.prefer_first else _cell_number
        search = GameSearch[Board, int](max_depth=self.max_depth, cache=self.learned.cache, label=Board.key,
                                        prefer=prefer)
        self.agent = RAFAAgent(planner=search, make_model=self._model_for, to_action=self._move_or_fallback,
                               learn=self._learn, learn_episode=self._reflect, memory=self.learned.memory)
        self.decision: MoveDecision | None = None
        self._board, self._session = Board(), ""
        self._model: TicTacToeModel | None = None

    # -- the agent protocol: an RAFAAgent whose hooks are this player's --------------------------
    async def act(self, board: Board, info: dict[str, Any]) -> int:
        self._board, self._session = board, info["session"]
        return await self.agent.act(board, info)

    async def observe(self, move: int, after: Board, reward: float, done: bool, info: dict[str, Any]) -> dict[str, Any] | None:
        return await self.agent.observe(move, after, reward, done, info)

    async def end_episode(self, record: Any) -> dict[str, Any] | None:
        return await self.agent.end_episode(record)

    async def choose(self, board: Board, session: str) -> MoveDecision:
        await self.act(board, {"session": session})
        assert self.decision is not None
        return self.decision

    def _model_for(self, memory: Memory) -> TicTacToeModel:
        self._model = self.model(self._session, root=self._board)
        return self._model

    def _move_or_fallback(self, plan: Plan) -> int:
        """The plan's first move, or (no legal one) a random empty cell, seeded per game and board."""
        board, session = self._board, self._session
        log = {"search": plan.tree, "value": plan.value, "model_log": self._model.log if self._model else []}
        if plan.actions and board.is_legal(plan.next()):
            self.decision = MoveDecision(plan.next(), log=log)
        else:
            position = fallback_rng(self.seed, session, board).choice(board.empty_positions())
            self.decision = MoveDecision(position, fallback=True, log={**log, "fallback": position})
        return self.decision.position

    async def _learn(self, memory: Memory, move: int, after: Board, reward: float, info: dict[str, Any]) -> dict[str, Any]:
        return await self.learn_transition(info["before"], info["mover"], move, after)

    async def _reflect(self, memory: Memory, record: Any) -> dict[str, Any] | None:
        return await self.end_game(record.moves, record.final, record.result)

    async def learn_transition(self, before: Board, mover: Role, move: int, after: Board) -> dict[str, Any]:
        """Compare each model's prediction with what happened; keep the true example on a miss."""
        model = self.model(session=None)
        theirs = mover != self.role
        learn_availability = self.options.learn_availability
        predicted_after, verdict, empties, predicted_move = await asyncio.gather(
            model.dynamics(before, mover, move),
            model.winner(after),
            model.availability(after) if learn_availability else _none(),
            model.opponent(before) if theirs else _none(),
        )
        truth_verdict = after.winner() or "none"
        truth_empties = after.empty_positions()
        memory = self.learned.memory
        added: list[str] = []
        if predicted_after != after:
            memory.add_example("dynamics", {"before": before.key(), "role": mover, "move": move, "after": after.key()})
            added.append("dynamics")
        if theirs and predicted_move != move:
            memory.add_example("opponent", {"board": before.key(), "role": mover, "move": move})
            added.append("opponent")
        if verdict != truth_verdict:
            memory.add_example("winner", {"board": after.key(), "reasoning": P.winner_reasoning(after)})
            added.append("winner")
        if learn_availability and empties != frozenset(truth_empties):
            memory.add_example("availability", {"board": after.key(), "empties": truth_empties})
            added.append("availability")
        if added:
            self.learned.model_updated()
        return {
            "predicted": {
                "dynamics": predicted_after.key() if predicted_after is not None else None,
                "winner": verdict,
                "availability": sorted(empties) if empties is not None else None,
                "opponent": predicted_move,
            },
            "added_examples": added,
        }

    async def end_game(self, moves: Sequence[tuple[Role, int]], final: Board, result: str) -> dict[str, Any] | None:
        """Reflect on the game and save it; with ``improvement_plan``, rewrite the plan from the
        last 10 saved games.  (The original reflected too, but its plan stayed empty.)"""
        record = P.game_record_text(moves, final, result, self.role)
        lessons = (await ask(self.llm, P.reflection_prompt(record, self.role), self.temperature, TEXT_TOKENS)).strip()
        memory = self.learned.memory
        memory.add_trial({"record": record, "result": result, "lessons": lessons})
        memory.add_reflection(lessons)
        if not self.options.improvement_plan:
            return {"lessons": lessons}
        plan = await ask(self.llm, P.plan_prompt(memory.trials[-10:], self.role), self.temperature, TEXT_TOKENS)
        self.learned.plan = plan.strip()
        self.learned.model_updated()  # the proposer's prompt changed
        return {"lessons": lessons, "plan": self.learned.plan}

    def state_json(self) -> dict[str, Any]:
        return {"kind": "rafa", "role": self.role, "breadth": self.breadth, "model": self.llm.name, **self.learned.to_json()}


async def _none() -> None:
    return None


def _cell_number(position: int) -> int:
    return position
