"""Training: the loop (`train_and_evaluate`) and its parts, one job per module.

- `loop`: `train_and_evaluate` and `build` (family and initial state of a config).
- `epochs`: `RunState` and the `EpochRunner` (compiled steps of one epoch).
- `evaluate`: the test-set evaluator.
- `rundir`: the run directory (lock, config check, monitor inputs, metrics.jsonl).
- `divergence`: non-finite checks and rollback.
- `stop`: SIGINT / SIGTERM handling and the process clock.
"""

from gm.train.epochs import EpochRunner, RunState
from gm.train.loop import build, train_and_evaluate

__all__ = ["EpochRunner", "RunState", "build", "train_and_evaluate"]
