"""Prompts of the ALFWorld agent: actor, world model, critic and reflection, and their parsers.

All wording is this project's own. The few-shot traces (``fewshot.json``) were played by
our scripted player (``rafa_core.alfworld.oracle``) on games from ``make_games``
(``python -m rafa_core.alfworld.fewshot`` rebuilds them), two per task type. They use the
command syntax of the installed alfworld (0.4: ``move X to Y``); older releases used
``put X in/on Y`` and :func:`put_syntax` converts.

A transcript is rendered as the game's first observation, then ``> command`` lines each
followed by the observation; critic transcripts add ``Critic: ...`` lines after the
observations that change progress.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

ACTOR_HEAD = "You play a text game set in a household."
WORLD_HEAD = "You are the simulator of a household text game."
CRITIC_HEAD = "You judge progress in a household text game."
REFLECT_HEAD = "You review a failed attempt at a household text game."

GAME_MARK = "Here is the game."
MEMORY_MARK = "Your memory for the task below:"

COMMANDS = (
    "go to (receptacle), open (receptacle), close (receptacle), take (object) from (receptacle), "
    "{put}, examine (something), use (object), heat (object) with (receptacle), "
    "clean (object) with (receptacle), cool (object) with (receptacle), inventory, look"
)


@dataclass
class Turn:
    """One real or imagined step. ``critic`` is filled in by the critic (critic history only)."""

    action: str
    observation: str
    critic: str | None = None


# -- the installed command syntax -----------------------------------------------------------
def shipped_data_dir() -> Path:
    """``alfworld/data`` of the installed wheel, found without importing ``alfworld``
    (its ``__init__`` sets and creates a default ``$ALFWORLD_DATA``)."""
    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("the alfworld package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@lru_cache(maxsize=1)
def put_syntax() -> str:
    """``move`` (alfworld >= 0.4: ``move X to Y``) or ``put`` (older: ``put X in/on Y``)."""
    try:
        grammar = (shipped_data_dir() / "alfred.twl2").read_text(encoding="utf-8")
    except OSError:
        return "move"
    return "move" if 'template :: "move {o} to {r}"' in grammar else "put"


def in_installed_syntax(text: str) -> str:
    """Rewrite our 0.4-style examples for an older engine (``put X in/on Y``)."""
    if put_syntax() == "move":
        return text
    text = re.sub(r"^> move (.+?) to (.+)$", r"> put \1 in/on \2", text, flags=re.MULTILINE)
    return re.sub(r"You move the (.+?) to the (.+?)\.", r"You put the \1 in/on the \2.", text)


def command_list() -> str:
    put = "move (object) to (receptacle)" if put_syntax() == "move" else "put (object) in/on (receptacle)"
    return COMMANDS.format(put=put)


# -- transcripts ----------------------------------------------------------------------------
HIDDEN_ACTION = "OK."  # what the original's critic history shows in place of each action


def render(intro: str, turns: list[Turn], critic: bool = False, hide_actions: bool = False) -> str:
    lines = [intro.strip()]
    for turn in turns:
        lines += [f"> {HIDDEN_ACTION if hide_actions else turn.action}", turn.observation]
        if critic and turn.critic:
            lines.append(turn.critic)
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _fewshot() -> dict[str, list[dict]]:
    text = resources.files("rafa_core.alfworld").joinpath("fewshot.json").read_text(encoding="utf-8")
    return json.loads(text)


def examples(kind: str) -> list[tuple[str, list[Turn]]]:
    """The few-shot traces of a task kind: (first observation, turns with critic lines)."""
    out = []
    for ex in _fewshot()[kind]:
        turns = [Turn(t["action"], t["observation"], t.get("critic")) for t in ex["turns"]]
        out.append((ex["intro"], turns))
    return out


def example_reflection(kind: str) -> str:
    return _fewshot()[f"{kind}_reflection"][0]["text"]


def _example_block(kind: str, critic: bool, hide_actions: bool = False, swap_last: bool = False) -> str:
    """The kind's traces; ``swap_last``: the last one is given as the memory example instead."""
    traces = examples(kind)[:-1] if swap_last else examples(kind)
    blocks = [
        f"Example {i}:\n{in_installed_syntax(render(intro, turns, critic=critic, hide_actions=hide_actions))}"
        for i, (intro, turns) in enumerate(traces, 1)
    ]
    return "\n\n".join(blocks)


def memory_block(reflections: list[str]) -> str:
    if not reflections:
        return ""
    lines = [MEMORY_MARK] + [f"Trial {i}: {r.strip()}" for i, r in enumerate(reflections)]
    return "\n".join(lines) + "\n\n"


def _reflection_style_example(kind: str) -> str:
    """From trial 1 on: an example of a memory and of following it."""
    intro, turns = examples(kind)[-1]  # the trace the example reflection was written about
    return (
        "An example of using memory:\n"
        f"{MEMORY_MARK}\nTrial 0: {example_reflection(kind)}\n"
        f"{in_installed_syntax(render(intro, turns))}\n\n"
    )


# -- the prompts ------------------------------------------------------------------------------
def actor_prompt(kind: str, intro: str, turns: list[Turn], reflections: list[str], reflection_style: bool,
                 swap_example: bool = True, pending: str | None = None) -> str:
    """The actor's prompt; with ``pending`` (a command) it asks for the game's answer to it:
    the original's world model was this same prompt continued after "> command".

    ``reflection_style``: from trial 1 on, an example of a memory being used. As the original,
    it replaces the last plain trace (``swap_example``); otherwise it is added as a third."""
    game = in_installed_syntax(render(intro, turns))
    ending = f"{game}\n> {pending}\n" if pending is not None else f"{game}\n>"
    return (
        f"{ACTOR_HEAD} Each turn you type one command and the game answers.\n"
        f"Commands: {command_list()}.\n"
        "Continue the game by exactly one line: after \">\" the next command, after a command the game's answer.\n\n"
        f"{_example_block(kind, critic=False, swap_last=reflection_style and swap_example)}\n\n"
        f"{_reflection_style_example(kind) if reflection_style else ''}"
        f"{memory_block(reflections)}"
        f"{GAME_MARK}\n{ending}"
    )


def world_prompt(kind: str, intro: str, turns: list[Turn], action: str) -> str:
    """A dedicated simulator prompt without memory (an improvement: ``simulator_prompt``)."""
    return (
        f"{WORLD_HEAD} Given the transcript and the player's next command, write the game's "
        "answer: one line, nothing else. A command that cannot be done gets \"Nothing happens.\"\n\n"
        f"{_example_block(kind, critic=False)}\n\n"
        f"{GAME_MARK}\n{in_installed_syntax(render(intro, turns))}\n> {action}\n"
    )


OK_OPTION = 'or "OK." when progress did not change'


def critic_prompt(kind: str, intro: str, turns: list[Turn], reflections: list[str], see_actions: bool = False) -> str:
    """The critic's prompt. By default as the original: the transcript shows every command as
    "OK." and the critic may answer "OK." (no new critic line). ``see_actions`` (an
    improvement) shows the commands and always asks for a line."""
    hide = not see_actions
    ask = (f'Write the critic line for the last observation, starting with "Critic:", {OK_OPTION}.\n' if hide
           else 'Write the critic line for the last observation, starting with "Critic:".\nCritic:')
    return (
        f"{CRITIC_HEAD} A task splits into sub-goals. After an observation that changes progress, "
        "a critic line names the sub-goals, says which are met, and gives the value k/N "
        "(k of the N sub-goals met).\n\n"
        f"{_example_block(kind, critic=True, hide_actions=hide)}\n\n"
        f"{memory_block(reflections)}"
        f"{GAME_MARK}\n{in_installed_syntax(render(intro, turns, critic=True, hide_actions=hide))}\n"
        f"{ask}"
    )


def reflection_prompt(kind: str, intro: str, turns: list[Turn], earlier: list[str]) -> str:
    """A plan from the failed actions and observations (an improvement: ``plan_reflections``)."""
    ex_intro, ex_turns = examples(kind)[-1]
    failed = render(ex_intro, ex_turns[: max(1, len(ex_turns) // 2)])
    return (
        f"{REFLECT_HEAD} Say in two or three sentences what went wrong and write a concrete "
        "plan for the next attempt: where the objects are, which receptacles to go to first, "
        "which steps to take. Start with \"Plan:\".\n\n"
        f"Example attempt (it ran out of steps):\n{in_installed_syntax(failed)}\n"
        f"Plan: {example_reflection(kind)}\n\n"
        f"{memory_block(earlier)}"
        f"{GAME_MARK}\n{in_installed_syntax(render(intro, turns))}\n"
        "STATUS: FAIL (ran out of steps)\nPlan:"
    )


FEEDBACK_MARK = "Feedback on the critic:"


def critic_reflection_prompt(intro: str, turns: list[Turn], earlier: list[str]) -> str:
    """As the original: reflect on the failed *critic history* (commands shown as "OK.",
    critic lines kept), with three examples, and write a corrected critic for next time."""
    shots = []
    for ex in _fewshot()["critic_reflections"]:
        ex_turns = [Turn(t["action"], t["observation"], t.get("critic")) for t in ex["turns"]]
        shots.append(f"{in_installed_syntax(render(ex['intro'], ex_turns, critic=True, hide_actions=True))}\n"
                     f"STATUS: FAIL\n{FEEDBACK_MARK} {ex['text']}")
    examples_text = "\n\n".join(shots)
    return (
        f"{REFLECT_HEAD} Below is the critic's record of it: the observations, each command shown as "
        "\"OK.\", and the critic lines. Do not retell the game; find where the critic went wrong and "
        "write a short, corrected critic for the next attempt at the same task, naming the critic "
        f"lines it should have written and what you learned about where things are. Answer after \"{FEEDBACK_MARK}\". "
        "Three examples:\n\n"
        f"{examples_text}\n\n"
        f"{memory_block(earlier)}"
        f"{GAME_MARK}\n{in_installed_syntax(render(intro, turns, critic=True, hide_actions=True))}\n"
        f"STATUS: FAIL\n{FEEDBACK_MARK}"
    )


# -- reading prompts back (the simulated oracle does) -----------------------------------------
@dataclass
class GameSection:
    memory: list[str]
    intro: str
    turns: list[Turn]
    pending: str  # the command whose result a world-model prompt asks for ("" otherwise)


def read_game_section(prompt: str) -> GameSection:
    """The transcript part of any of our prompts (after the last ``Here is the game.``)."""
    head, _, game = prompt.rpartition(GAME_MARK)
    memory = []
    if MEMORY_MARK in head:
        block = head.rsplit(MEMORY_MARK, 1)[1].strip().splitlines()
        # The memory block sits right before the game; an example's memory is followed by a trace.
        if all(re.match(r"^Trial \d+: ", ln) for ln in block):
            memory = [ln.split(": ", 1)[1] for ln in block]
    lines = [ln for ln in game.strip("\n").split("\n")]
    intro_lines: list[str] = []
    turns: list[Turn] = []
    pending = ""
    i = 0
    while i < len(lines) and not lines[i].startswith(">"):
        intro_lines.append(lines[i])
        i += 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(">"):
            action = line[1:].strip()
            obs = lines[i + 1] if i + 1 < len(lines) and not lines[i + 1].startswith(">") else None
            if obs is None or obs.startswith(("Critic:", "Write the critic", "STATUS:", "Continue the game")):
                pending = action
                i += 1
                continue
            turns.append(Turn(action, obs))
            i += 2
            continue
        if line.startswith("Critic:") and line != "Critic:" and turns:
            turns[-1].critic = line
        i += 1
    return GameSection(memory, "\n".join(intro_lines).strip(), turns, pending)


# -- parsing model answers ------------------------------------------------------------------
# Longer answers are cut here: a runaway answer then costs milliseconds to read and to
# compare with the admissible commands (difflib is quadratic in the lengths it compares).
MAX_LINE_CHARS = 1000  # an observation or critic line is a few hundred characters at most
MAX_COMMAND_CHARS = 200  # a command is under 80


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:MAX_LINE_CHARS]
    return ""


def parse_action(text: str) -> str:
    """A command from a proposer answer ('' when there is none). Tolerates '> ', quotes,
    a trailing period, 'Action:' prefixes, and the older ``put X in/on Y`` form."""
    line = first_line(text)[:MAX_COMMAND_CHARS]
    line = re.sub(r"^(?:>\s*|(?:action|command|next command)\s*:\s*)+", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("`\"'").rstrip(".").strip().lower()
    line = re.sub(r"\s+", " ", line)
    if put_syntax() == "move":
        line = re.sub(r"^put (.+?) (?:in/on|in|on|into) (.+)$", r"move \1 to \2", line)
    return line


def parse_observation(text: str) -> str:
    line = first_line(text)
    return re.sub(r"^(?:observation\s*:\s*)", "", line, flags=re.IGNORECASE).strip()


# A few digits each side (a run of thousands of digits would be re-scanned from each one).
_VALUE = re.compile(r"(?<!\d)(\d{1,6})\s*/\s*(\d{1,6})(?!\d)")


def parse_critic(text: str) -> tuple[str, float | None]:
    """(critic line, value in [0, 1]) from a critic answer; value None when none parses."""
    line = first_line(text)
    if line and not line.lower().startswith("critic:"):
        line = f"Critic: {line}"
    values = [(int(k), int(n)) for k, n in _VALUE.findall(line) if int(n) > 0 and int(k) <= int(n)]
    if not values:
        return line, None
    k, n = values[-1]
    return line, k / n


def is_no_critic(text: str) -> bool:
    """The critic's "OK.": progress did not change, no critic line."""
    return first_line(text).lower().rstrip(".!").strip() in {"ok", "> ok"}


def parse_reflection(text: str, first_paragraph: bool = True) -> str:
    """A reflection on one line (memory lines are ``Trial i: ...``). ``first_paragraph``:
    keep only the first paragraph, at most 600 characters (with plan reflections); the
    original kept the whole answer (at most 256 tokens)."""
    text = (text or "").strip()
    text = re.sub(r"^(?:plan|feedback on the critic|failure feedback)\s*:\s*", "", text, flags=re.IGNORECASE)
    if first_paragraph:
        return " ".join(text.split("\n\n")[0].split())[:600]
    return " ".join(text.split())
