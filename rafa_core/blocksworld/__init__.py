"""BlocksWorld: the STRIPS domain, its text layer, instances, prompts and the LLM task model.

The two entry points are ``blocksworld/run_mcts.py`` (RAP: search only) and
``blocksworld/run_rafa_mcts.py`` (RAFA: search, act, observe, search again).
"""
