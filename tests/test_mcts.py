"""The generic MCTS on a tiny hand-built tree whose rewards are fixed: paths and statistics
are the ones computed by hand (see the comments).  The first tests pin the original's
internals (the default); the others the project's variants (``MCTSConfig.improved()``)."""

import asyncio
import math

import pytest

from rafa_core.search.mcts import MCTS, MCTSConfig, MCTSPlanner

# root R -> A (prior .8), B (.2); A -> A1 (.6), A2 (.4); B -> B1, B2 (.5 each).
CHILDREN = {"R": ["A", "B"], "A": ["A1", "A2"], "B": ["B1", "B2"]}
PRIORS = {"A": 0.8, "B": 0.2, "A1": 0.6, "A2": 0.4, "B1": 0.5, "B2": 0.5}
R1 = {"R": 0.5, "A": 1.0, "B": 0.5, "A1": 0.5, "A2": 100.0, "B1": 1.0, "B2": 0.5}


class FixedModel:
    def __init__(self):
        self.predicted = []

    async def propose(self, state):
        return list(CHILDREN.get(state, []))

    async def priors(self, state, actions):
        return [PRIORS[a] for a in actions]

    async def predict(self, state, action):
        self.predicted.append(action)
        return action  # the action names the state it leads to

    async def evaluate(self, state):
        return R1[state]

    def is_terminal(self, state):
        return R1[state] > 50


def run(coro):
    return asyncio.run(coro)


def reward(prior, r1):
    return math.sqrt(prior * r1)  # alpha = 0.5


def names(path):
    return [n.state for n in path]


def test_the_original_internals_by_hand():
    model = FixedModel()
    tree = MCTS(model, "R", MCTSConfig(max_depth=2))
    a, a1, a2 = reward(0.8, 1.0), reward(0.6, 0.5), reward(0.4, 100.0)

    # 1: as below: R, A, A1.  Backup divides the k rewards from a node down by k + 1, and
    #    the root counts with reward 0: A1 a1/2, A (a+a1)/3, R (0+a+a1)/4.
    assert names(run(tree.iterate())) == ["R", "A", "A1"]
    node_a, node_b = tree.root.children
    node_a1, node_a2 = node_a.children
    assert node_a1.value == pytest.approx(a1 / 2)
    assert node_a.value == pytest.approx((a + a1) / 3)
    assert tree.root.value == pytest.approx((a + a1) / 4)
    best = tree.best_trajectory()  # (0 + a + a1) / (depth 2 + 1)
    assert best.actions == ["A", "A1"] and best.mean_reward == pytest.approx((a + a1) / 3)

    # 2: ln N(R) = 0: A's .481 beats B's .316.  Under A, A1's mean .274 loses to unvisited
    #    A2's reward .447 (with sum/k it would have been .548 > .447): the goal.
    assert names(run(tree.iterate())) == ["R", "A", "A2"]
    assert node_a2.value == pytest.approx(a2 / 2) and node_a.value == pytest.approx((a + a2) / 3)
    assert tree.best_trajectory().mean_reward == pytest.approx((a + a2) / 3)

    # 3: nothing is skipped: A (2.406 + sqrt(ln 2 / 2)) beats B (.316 + sqrt(ln 2)), and
    #    the goal A2 (3.162 + sqrt(ln 2)) is walked again without a model call.
    assert names(run(tree.iterate())) == ["R", "A", "A2"]
    assert [tree.root.visits, node_a.visits, node_a2.visits] == [3, 3, 2]
    assert model.predicted == ["A", "A1", "A2"]


def test_an_iteration_below_the_root_backs_up_from_there_and_memory_propagate_adds_no_visit():
    tree = MCTS(FixedModel(), "R", MCTSConfig(max_depth=2))
    run(tree.iterate())
    node_a, node_b = tree.root.children
    root_value = tree.root.value
    path = run(tree.iterate(node_b))  # where a RAFA agent might really be
    b, b1 = reward(0.2, 0.5), reward(0.5, 1.0)
    assert names(path) == ["B", "B1"]  # the start node's reward counts, the root is not touched
    assert node_b.value == pytest.approx((b + b1) / 3) and path[1].value == pytest.approx(b1 / 2)
    assert tree.root.visits == 1 and tree.root.value == root_value
    # The real environment shows B1 led to the goal (A2's state): the path's means are
    # re-added with the true reward; visits stay as they were.
    run(tree.observe(path[1], "A2"))
    tree.memory_propagate(path)
    true_b1 = reward(0.5, 100.0)
    assert node_b.value == pytest.approx((b + true_b1) / 3) and path[1].value == pytest.approx(true_b1 / 2)
    assert node_b.visits == 1 and path[1].visits == 0  # B1's statistics were cleared by the wrong prediction


def test_three_iterations_by_hand():
    model = FixedModel()
    tree = MCTS(model, "R", MCTSConfig.improved(alpha=0.5, w_exp=1.0, max_depth=2))

    # 1: N(R)=0 so no bonus: unvisited children by reward (r1 = .5 before evaluation):
    #    A sqrt(.8*.5)=.632 > B .316; then A1 sqrt(.6*.5)=.548 > A2 .447; A1 is at max depth.
    assert names(run(tree.iterate())) == ["R", "A", "A1"]
    a1, a = reward(0.6, 0.5), reward(0.8, 1.0)
    node_a, node_b = tree.root.children
    node_a1, node_a2 = node_a.children
    assert node_a1.value == pytest.approx(a1)
    assert node_a.value == pytest.approx((a + a1) / 2)
    assert tree.root.value == pytest.approx((a + a1) / 2)  # the root adds no reward
    assert [tree.root.visits, node_a.visits, node_a1.visits] == [1, 1, 1]
    assert node_a1.exhausted and not node_a.exhausted  # A2 is still unexplored
    best = tree.best_trajectory()
    assert best.actions == ["A", "A1"] and best.mean_reward == pytest.approx((a + a1) / 2)

    # 2: ln N(R) = ln 1 = 0: Q(A)=.721 beats B's .316. Under A, A1 is exhausted (walking it
    #    again would learn nothing), so A2 is taken: the goal (r1 = 100).
    assert names(run(tree.iterate())) == ["R", "A", "A2"]
    a2 = reward(0.4, 100.0)
    assert node_a2.terminal and node_a2.value == pytest.approx(a2)
    assert node_a.value == pytest.approx((a + a2) / 2)  # max(.721, 3.610)
    assert [tree.root.visits, node_a.visits, node_a1.visits, node_a2.visits] == [2, 2, 1, 1]
    assert node_a.exhausted and not tree.root.exhausted
    best = tree.best_trajectory()
    assert best.actions == ["A", "A2"] and best.mean_reward == pytest.approx((a + a2) / 2)

    # 3: A is exhausted, so B (never visited); under B, unvisited B1 and B2 tie at
    #    sqrt(.5*.5) = .5 + sqrt(ln 1): the first, B1 (r1 = 1).
    assert names(run(tree.iterate())) == ["R", "B", "B1"]
    b, b1 = reward(0.2, 0.5), reward(0.5, 1.0)
    assert node_b.value == pytest.approx((b + b1) / 2)
    assert tree.root.value == pytest.approx((a + a2) / 2)  # max over iterations
    assert tree.root.visits == 3 and node_b.visits == 1
    assert model.predicted == ["A", "A1", "A2", "B", "B1"]  # nothing is predicted twice
    assert tree.best_trajectory().actions == ["A", "A2"]

    # 4: B2 is the last unexplored node; after it the whole tree is exhausted.
    assert names(run(tree.iterate())) == ["R", "B", "B2"]
    assert tree.root.exhausted
    # 5: an exhausted tree is walked again by plain UCT, without any model call.
    run(tree.iterate())
    assert model.predicted == ["A", "A1", "A2", "B", "B1", "B2"] and tree.root.visits == 5


def test_uct_scores_by_hand():
    tree = MCTS(FixedModel(), "R", MCTSConfig.improved())
    for _ in range(2):
        run(tree.iterate())
    root = tree.root
    node_a, node_b = root.children
    assert node_b.visits == 0 and node_a.visits == 2
    assert tree.uct(node_b, root.visits) == pytest.approx(reward(0.2, 0.5) + math.sqrt(math.log(2)))
    assert tree.uct(node_a, root.visits) == pytest.approx(node_a.value + math.sqrt(math.log(2) / 2))


def test_a_trajectory_marked_failed_is_not_the_best_any_more():
    tree = MCTS(FixedModel(), "R", MCTSConfig.improved(max_depth=2))
    for _ in range(4):
        run(tree.iterate())
    node_a, node_b = tree.root.children
    assert tree.best_trajectory().actions == ["A", "A2"]
    tree.mark_failed(node_a.children[1])  # the environment says: no goal there after all
    # Among the others: A, A1 (.721) beats B, B1 (.512) and B, B2.
    assert tree.best_trajectory().actions == ["A", "A1"]
    assert tree.next_node(tree.root) == (node_a, "best trajectory")
    tree.mark_failed(node_a.children[0])
    assert tree.best_trajectory().actions == ["B", "B1"]
    assert tree.next_node(node_a)[1] == "best child"  # no plan left through A


def test_a_wrong_prediction_reopens_an_exhausted_subtree():
    tree = MCTS(FixedModel(), "R", MCTSConfig.improved(max_depth=2))
    for _ in range(4):
        run(tree.iterate())
    node_a, _ = tree.root.children
    assert tree.root.exhausted and node_a.exhausted
    assert run(tree.observe(node_a, "B")) is False  # A really led to B's state
    assert not node_a.exhausted and not tree.root.exhausted
    path = run(tree.iterate(node_a))  # re-expanded from the true state: B's children
    assert names(path)[:2] == ["R", "B"] and node_a.children is not None
    assert [c.action for c in node_a.children] == ["B1", "B2"]


def test_rafa_hooks_iterate_from_a_node_observe_and_fall_back():
    tree = MCTS(FixedModel(), "R", MCTSConfig.improved(max_depth=2))
    run(tree.iterate())
    node_a, node_b = tree.root.children
    # An iteration from B (where a RAFA agent might really be) backs up through the root.
    path = run(tree.iterate(node_b))
    assert names(path) == ["R", "B", "B1"] and tree.root.visits == 2
    # The best trajectory goes through A, not B: RAFA falls back to B's best child.
    chosen, why = tree.next_node(node_b)
    assert why == "best child" and chosen.state == "B1"
    chosen, why = tree.next_node(tree.root)
    assert why == "best trajectory" and chosen is node_a
    # The real environment shows A led somewhere else: children and statistics are dropped.
    assert run(tree.observe(node_a, "B")) is False
    assert node_a.children is None and node_a.visits == 0 and node_a.observed and node_a.r1 == 0.5
    # A right prediction keeps the subtree.
    assert run(tree.observe(node_b, "B")) is True and node_b.children is not None


def test_uniform_priors_without_a_prior_model():
    class Plain:
        def __init__(self):
            self.inner = FixedModel()

        async def propose(self, state):
            return await self.inner.propose(state)

        async def predict(self, state, action):
            return action

        async def evaluate(self, state):
            return R1[state]

        def is_terminal(self, state):
            return R1[state] > 50

    tree = MCTS(Plain(), "R", MCTSConfig(max_depth=2))
    run(tree.iterate())
    assert [c.prior for c in tree.root.children] == [0.5, 0.5]


def test_the_mcts_planner_plans_from_the_state_it_is_given():
    # RAFA's planner: plan(model, state) from the root, observe the real step, plan from there.
    model = FixedModel()
    tree = MCTS(model, "R", MCTSConfig(max_depth=2, memory_propagate=False))
    planner = MCTSPlanner(tree)
    plan = run(planner.plan(model, "R"))
    assert plan.actions == ["A"] and plan.tree["why"] == "best trajectory"  # R, A, A1
    assert run(planner.observe("A", "A")) is True and planner.current.state == "A"
    plan = run(planner.plan(model, "A"))
    assert plan.actions == ["A2"] and plan.tree["tree"]["iterations"] == 2
    with pytest.raises(ValueError):
        run(planner.plan(model, "B1"))  # neither the start nor where the agent moved
    # A new episode starts where the tree does.
    assert run(planner.plan(model, "R")).actions and planner.current is tree.root
