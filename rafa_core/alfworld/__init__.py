"""ALFWorld for RAFA: the real engine (env), offline games (make_games), prompts, the LLM model
the look-ahead searches over (model), the simulated oracle (oracle), trials with reflection
memory (trials) and the entry point (cli). Imports the real ``alfworld`` package lazily."""
