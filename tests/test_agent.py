"""The RAFA loop on a toy task: reach a target number by +1/-1 steps."""

import asyncio

import pytest

from rafa_core.agent import RAFAAgent
from rafa_core.memory import Memory
from rafa_core.search.base import Plan


class Counter:
    def __init__(self, target):
        self.target = target

    def reset(self, index):
        self.value = index
        return self.value, {}

    def step(self, action):
        self.value += action
        done = self.value == self.target
        hint = "higher" if self.value < self.target else "lower"
        return self.value, float(done), done, {"success": done, "hint": hint}


class GreedyPlanner:
    """Plans a whole trajectory with a (possibly wrong) belief about the target."""

    def __init__(self):
        self.calls = 0

    async def plan(self, model, state):
        self.calls += 1
        target = model
        sign = 1 if target > state else -1
        return Plan(actions=[sign] * abs(target - state), value=0.0)


def test_replanning_every_step_with_feedback_reaches_the_goal():
    planner = GreedyPlanner()
    agent = RAFAAgent(planner=planner, make_model=lambda memory: 5, max_steps=10)
    result = asyncio.run(agent.run_episode(Counter(5), 2))
    assert result.success and result.env_steps == 3 and result.solved_at == 3
    assert planner.calls == 3
    assert [r.action for r in result.trace] == [1, 1, 1]


def test_learning_from_feedback_fixes_a_wrong_model():
    # The model starts out believing the target lies below; the feedback says "higher".
    def make_model(memory):
        hints = [f["info"].get("hint") for f in memory.feedback]
        return 10 if "higher" in hints else 0

    agent = RAFAAgent(planner=GreedyPlanner(), make_model=make_model, max_steps=10)
    result = asyncio.run(agent.run_episode(Counter(5), 3))
    assert result.success and [r.action for r in result.trace] == [-1, 1, 1, 1]

    stubborn = RAFAAgent(planner=GreedyPlanner(), make_model=lambda memory: 0, max_steps=10)
    assert not asyncio.run(stubborn.run_episode(Counter(5), 3)).success


def test_without_switching_the_first_plan_is_executed_to_the_end():
    agent = RAFAAgent(planner=GreedyPlanner(), make_model=lambda m: 9, switch=lambda m, o, p: False, max_steps=4)
    result = asyncio.run(agent.run_episode(Counter(5), 0))
    assert not result.success and result.env_steps == 4
    assert [r.plan is not None for r in result.trace] == [True, False, False, False]


def test_an_environment_can_drive_the_agent_step_by_step():
    # The same episode as run_episode, driven from outside through act / observe / end_episode.
    learned = []

    async def learn_episode(memory, result):
        learned.append((result, len(memory.feedback)))
        return "lesson"

    agent = RAFAAgent(planner=GreedyPlanner(), make_model=lambda memory: 5, learn_episode=learn_episode)

    async def drive():
        env = Counter(5)
        obs, info = env.reset(3)
        done = False
        while not done:
            action = await agent.act(obs, info)
            obs, reward, done, info = env.step(action)
            await agent.observe(action, obs, reward, done, info)
        record = agent.episode
        return record, await agent.end_episode("won")

    record, said = asyncio.run(drive())
    assert said == "lesson" and learned == [("won", 2)]
    assert record.success and record.solved_at == 2 and [r.action for r in record.trace] == [1, 1]
    assert agent.episode.trace == [] and agent.step == 0  # the next act starts a new episode
    # The memory outlives the episode: the next one starts from what was learned.
    result = asyncio.run(agent.run_episode(Counter(5), 4))
    assert result.success and len(agent.memory.feedback) == 3


def test_an_empty_plan_is_a_failed_step_that_ends_the_episode():
    class Nothing:
        async def plan(self, model, state):
            return Plan(actions=[], value=0.25)

    result = asyncio.run(RAFAAgent(planner=Nothing(), make_model=lambda m: None).run_episode(Counter(5), 0))
    assert not result.success and result.env_steps == 0
    [step] = result.trace
    assert step.action is None and step.done and "no action" in step.info["error"]


def test_memory_versions_change_on_every_update():
    memory = Memory()
    versions = [memory.version]
    memory.add_feedback("obs")
    memory.add_reflection("lesson")
    memory.add_example("dynamics", {"x": 1})
    memory.add_reflection("   ")  # nothing to learn: no change
    versions.append(memory.version)
    assert versions == [0, 3]
    assert Memory.from_json(memory.to_json()) == memory
    assert memory.recent_reflections(3) == ["lesson"]


def test_an_environment_whose_reset_returns_only_the_observation_is_refused():
    class OldCounter(Counter):
        def reset(self, index):
            return super().reset(index)[0]

    agent = RAFAAgent(planner=GreedyPlanner(), make_model=lambda memory: 5)
    with pytest.raises(TypeError, match="reset"):
        asyncio.run(agent.run_episode(OldCounter(5), 2))


def test_optional_model_capabilities_are_protocols_seen_through_the_role_labels():
    from rafa_core.llm.request_log import labelled
    from rafa_core.search import JointEvaluator, Prefetcher, PriorModel

    class Plain:
        async def propose(self, state):
            return []

        async def evaluate(self, state):
            return 0.0

    class Capable(Plain):
        async def evaluate_all(self, states):
            return None

        def prefetch(self, state):
            return None

        async def priors(self, state, actions):
            return []

    for model in (Capable(), labelled(Capable())):
        assert isinstance(model, JointEvaluator) and isinstance(model, Prefetcher) and isinstance(model, PriorModel)
    for model in (Plain(), labelled(Plain())):
        assert not isinstance(model, (JointEvaluator, Prefetcher, PriorModel))
