"""RAFA on ALFWorld: ``python alfworld/run.py --num_trials 11 --num_envs 134 --use_memory``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.alfworld.benchmark import AlfWorldBenchmark  # noqa: E402
from rafa_core.driver import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(AlfWorldBenchmark(default_config=Path(__file__).with_name("base_config.yaml")), sys.argv[1:]))
