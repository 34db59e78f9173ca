"""The interface every model family implements, and the shared train state.

Callers (the training loop, eval commands, inversion, scoring) use only what is
declared here: `Family`'s methods and attributes, and the `GeneratorView` a
family that can sample returns from `generator(state)`.
"""

import contextlib
import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

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


@dataclasses.dataclass(frozen=True)
class GeneratorView:
  """A trained generator, weights captured: what sampling, scoring and inversion use.

  Attributes:
    apply: (z [N, latent_size], cond [N, K] or None) -> images [N, H, W, C] in [0, 1].
    noise: (key, n) -> generator inputs z [n, latent_size] from the prior.
    latent_size: size of z.
    output_range: (lo, hi) of the network's own output (tanh: (-1, 1)); `apply`
      maps it to [0, 1].
    conditional: whether `apply` needs a condition.
    encode: images [N, H, W, C] in [0, 1] -> codes [N, latent_size] (autoencoders), or None.
    features: images in [0, 1] -> discriminator features [N, F] (GANs), or None.
  """
  apply: Callable[..., Any]
  noise: Callable[[jax.Array, int], jnp.ndarray]
  latent_size: int
  output_range: Tuple[float, float] = (0.0, 1.0)
  conditional: bool = False
  encode: Optional[Callable[[jnp.ndarray], jnp.ndarray]] = None
  features: Optional[Callable[[jnp.ndarray], jnp.ndarray]] = None
  # Compiled functions of this view (`cached`): inversion's, by settings; later calls reuse them.
  compiled: Dict[tuple, Callable] = dataclasses.field(default_factory=dict, repr=False,
                                                      compare=False)

  @property
  def output_scale(self) -> float:
    """Width of the network's own output range (2 for tanh's [-1, 1]): the 'sse' inversion loss
    measures squared differences there, as code comparing raw network outputs does."""
    return float(self.output_range[1] - self.output_range[0])

  def cached(self, key: tuple, build: Callable[[], Callable]) -> Callable:
    """`compiled[key]`, built by `build()` the first time."""
    if key not in self.compiled:
      self.compiled[key] = build()
    return self.compiled[key]

  def apply_jit(self) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """`apply` of unconditional codes z [N, latent_size], compiled once per view."""
    from gm.backend import runtime  # pylint: disable=g-import-not-at-top
    return self.cached(("apply",), lambda: runtime.jit(lambda z: self.apply(z)))


class Family:
  """Base class of model families.

  Subclasses implement `init`, `train_step`, `eval_step`, `monitor_inputs` and
  `monitor_images`; families that can sample also `generator` and `sample`. The
  training loop and eval commands only use what this class declares.

  Attributes:
    config: the full run config (read-only).
    total_steps: optimizer steps of the whole run (for schedules); set by the loop.
    steps_per_epoch: `train_step` calls per epoch (for schedules in epochs); set by the loop.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.total_steps = 0
    self.steps_per_epoch = 0

  def examples_per_step(self, batch_size: int) -> int:
    """Training examples one `train_step` consumes (GANs: one batch per discriminator step)."""
    return batch_size

  def check_data(self, image_shape: Tuple[int, ...]) -> None:
    """Raises a one-line ConfigError when the networks cannot take images of `image_shape`
    [H, W, C] (checked before a run directory is written); families whose networks adapt to
    the data need not override it."""
    del image_shape

  def epoch_stage(self, epoch: int) -> Any:
    """A static value the steps of `epoch` are compiled for (growing GANs: the resolution), or
    None when every epoch runs the same program."""
    del epoch
    return None

  def at_stage(self, stage: Any):
    """A context in which traced train steps run at `stage` (from `epoch_stage`)."""
    del stage
    return contextlib.nullcontext()

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

  def raw_state(self, state: Any) -> Any:
    """`state` without the parameter average (EMA) its samples come from, or None when the
    family keeps none (samples always use the trained weights)."""
    del state
    return None

  def generator(self, state: Any) -> GeneratorView:
    """The generator of `state` (for GANs with an EMA: the averaged weights).

    Raises:
      UserError: the family cannot sample.
    """
    del state
    from gm.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"{self.config.family} runs have no generator")

  def sample(self, state: Any, key: jax.Array, num: int, labels=None) -> Any:
    """`num` images [num, H, W, C] in [0, 1] on the host (conditional: one per label)."""
    del state, key, num, labels
    from gm.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"{self.config.family} runs draw no samples")

  num_classes = 0        # Labels `sample` can be conditioned on (0: unconditional).
  best_metric = ("test/loss", "min")  # The quality number `--step best` picks by.
  scoring = ""           # How samples are scored: judge | folder | canvas | '' (none); see
                         # gm.metrics.sample_scores.
  score_prefix = "judge"  # Prefix of the sample scores in metrics.jsonl.

  @property
  def grid_columns(self) -> int:
    """Columns of the monitoring grid."""
    return 8
