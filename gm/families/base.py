"""The interface every model family implements, and the shared train state."""

from typing import Any, Dict, Tuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
from flax.training import train_state

from gm.registry import Registry

FAMILIES = Registry("model family")

Batch = Dict[str, jnp.ndarray]
Metrics = Dict[str, jnp.ndarray]


class TrainState(train_state.TrainState):
  """Flax TrainState plus batch-norm statistics (an empty dict when unused)."""
  batch_stats: Any = flax.struct.field(default_factory=dict)


class Family:
  """Base class of model families.

  Subclasses implement `init`, `train_step`, `eval_step`, `monitor_inputs` and
  `monitor_images`; the training loop and eval commands only use these.

  Attributes:
    config: the full run config (read-only).
    total_steps: optimizer steps of the whole run (for schedules); set by the loop.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.total_steps = 0

  def examples_per_step(self, batch_size: int) -> int:
    """Training examples one `train_step` consumes (GANs: one batch per discriminator step)."""
    return batch_size

  def init(self, key: jax.Array, batch: Batch) -> Any:
    """Returns the initial state pytree for an example batch."""
    raise NotImplementedError

  def train_step(self, state: Any, batch: Batch, key: jax.Array) -> Tuple[Any, Metrics]:
    """One optimizer update. Pure: (state, batch, key) -> (state, scalar metrics)."""
    raise NotImplementedError

  def eval_step(self, state: Any, batch: Batch, key: jax.Array) -> Metrics:
    """Per-example test metrics [B] for one batch; the loop averages them.

    The evaluator pads the test set to whole batches and adds `batch['valid']`
    [B] (1.0 for test examples, 0.0 for padding rows). Per-example metrics may
    ignore it (padding rows are masked out of the means); a statistic of the
    whole batch (e.g. the GAN's sample spread) must use the valid rows only.
    Without the key, every row is valid.
    """
    raise NotImplementedError

  def monitor_inputs(self, key: jax.Array, test: Batch) -> Dict[str, Any]:
    """Fixed inputs (latents, test images, ...) drawn once and saved with the run."""
    raise NotImplementedError

  def monitor_images(self, state: Any, inputs: Dict[str, Any]) -> jnp.ndarray:
    """Images [N, H, W, C] in [0, 1] drawn from the fixed inputs, one grid per checkpoint."""
    raise NotImplementedError

  def tensorboard_images(self, state: Any, test: Batch) -> Dict[str, Any]:
    """Image sets for TensorBoard at each checkpoint beside the monitoring grid ('samples'):
    {tag: images [N, H, W, C] in [0, 1], 8 per row}; {} if none."""
    del state, test
    return {}

  def judge_metrics(self, state: Any, judge, key: jax.Array, test: Batch) -> Dict[str, float]:
    """Scores of generated samples by the MNIST judge (`gm.metrics.Judge`); {} if none apply."""
    del state, judge, key, test
    return {}

  def raw_state(self, state: Any) -> Any:
    """`state` without the parameter average (EMA) its samples come from, or None when the
    family keeps none (samples always use the trained weights)."""
    del state
    return None

  def health_warnings(self, history) -> list:
    """Warnings (strings with the numbers) about training going wrong, from this session's
    metrics records so far (oldest first); logged by the loop, training goes on."""
    del history
    return []

  best_metric = ("test/loss", "min")  # The quality number `--step best` picks by.
  uses_judge = True      # judge_metrics needs the MNIST judge (else it gets None).
  score_prefix = "judge"  # Prefix of judge_metrics in metrics.jsonl.

  @property
  def grid_columns(self) -> int:
    """Columns of the monitoring grid."""
    return 8
