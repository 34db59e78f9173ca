"""The training loop's entry points (kept for scripts and notebooks; see `gm.train`)."""

from gm.train import EpochRunner, RunState, build, train_and_evaluate

__all__ = ["EpochRunner", "RunState", "build", "train_and_evaluate"]
