"""gm from Python: load a run, draw from it, invert images, score it, train a config.

  import gm
  run = gm.load_run("runs/cake_fast", step="best")
  images = run.sample(16, seed=0)               # numpy [16, H, W, C] in [0, 1]
  targets, names = run.targets(index="test:0", image="skimage:chelsea")
  result = run.invert(targets, optimizer="adam", lr=0.1, steps=300, restarts=8)
  scores = run.score()                          # eval.py gan-score's numbers, one checkpoint
  warnings = run.health()                       # eval.py health: [(epoch, warning)]
  gm.fit(gm.load_config("configs/cake_fast.py:smoke", ["data.dir=photos"]), "runs/try")

`Run` is the object every `eval.py` command receives: the commands call these methods,
so a number from Python equals the command's for the same run, step and seed.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import ml_collections
import numpy as np

from gm import config_utils, invert as inv
from gm.commands.base import RunContext
from gm.errors import UserError
from gm.families.base import GeneratorView
from gm.train import rundir


class Run(RunContext):
  """A run directory at one checkpoint.

  Attributes (from `RunContext`): `workdir`, `config`, `family`, `state` (the model state at
  the chosen step; the generator EMA unless `raw`), `step`, `dataset` (loaded on first use),
  `steps()` (the checkpoint history), `model_at(step)`.
  """

  def __repr__(self) -> str:
    return (f"Run({self.workdir!r}, family={self.config.family!r}, "
            f"step={self.step!r}{', raw=True' if self.raw else ''})")  # The checkpoint loaded.

  @property
  def metrics(self) -> List[Dict[str, Any]]:
    """The records of metrics.jsonl, oldest first (one per epoch)."""
    return rundir.read_metrics(self.workdir)

  def sample(self, num: int, seed: int = 0, labels: Optional[Sequence[int]] = None) -> np.ndarray:
    """`num` samples [num, H, W, C] in [0, 1] drawn with PRNGKey(seed); conditional runs take
    `labels` [num] (default: the classes in turn). Equal to `eval.py samples --seed`."""
    if num <= 0:
      raise UserError(f"num must be > 0; got {num}")
    classes = getattr(self.family, "num_classes", 0)
    if classes and labels is None:
      labels = np.arange(num) % classes
    if labels is not None:
      labels = np.asarray(labels)
      if labels.shape != (num,) or not classes or labels.min() < 0 or labels.max() >= classes:
        raise UserError(f"labels must be {num} integers in 0..{classes - 1}" if classes else
                        "labels apply to conditional runs only")
    return np.asarray(self.family.sample(self.state, self.key(seed), num, labels))

  def generator(self) -> GeneratorView:
    """The run's generator (`gm.families.GeneratorView`: apply(z) -> images in [0, 1], noise,
    encode for autoencoders, D features for GANs; unconditional runs)."""
    return inv.generator_of(self.family, self.state)

  def encode(self, images: np.ndarray) -> np.ndarray:
    """Autoencoders: images [N, H, W, C] in [0, 1] -> codes [N, latent] (the posterior mean)."""
    view = self.family.generator(self.state)
    if view.encode is None:
      raise UserError(f"encode needs an autoencoder run (ae, vae); this is a "
                      f"{self.config.family} run")
    return np.asarray(view.encode(np.asarray(images, np.float32)))

  def reconstruct(self, images: np.ndarray) -> np.ndarray:
    """Autoencoders: images [N, H, W, C] in [0, 1] -> decoded codes, same shape."""
    view = self.family.generator(self.state)
    return np.asarray(view.apply(self.encode(images), None))

  def targets(self, index: str = "", image: str = "") -> Tuple[np.ndarray, List[str]]:
    """Images to invert [T, H, W, C] in [0, 1] and their names, chosen as `eval.py invert`
    does: `index` '0,5,test:2' (training / held-out images), `image` file paths or
    'skimage:<name>' (resized to the run's images)."""
    from gm.commands.invert import load_targets  # pylint: disable=g-import-not-at-top
    return load_targets(self, index, image)

  def invert(self, targets: np.ndarray, seed: int = 0, steps: int = 100, lr: float = 0.01,
             momentum: float = 0.9, optimizer: str = "sgd", loss: str = "mse",
             prior_weight: float = 0.01, restarts: int = 1, init: str = "random",
             generator: Optional[GeneratorView] = None) -> Dict[str, Any]:
    """Optimises z so that G(z) reproduces `targets` [T, H, W, C] in [0, 1] (the defaults are
    `eval.py invert`'s). Returns `gm.invert.invert`'s dict (`z`, `images`, `loss`, `losses`,
    `evolution`, ...) plus `psnr_db` and `ssim` [T] against the targets."""
    gen = generator or self.generator()
    res = inv.invert(gen, np.asarray(targets, np.float32), self.key(seed), steps=steps,
                     restarts=restarts, lr=lr, momentum=momentum, optimizer=optimizer, loss=loss,
                     prior_weight=prior_weight, init=init)
    if not np.all(np.isfinite(res["loss"])):
      bad = np.flatnonzero(~np.isfinite(np.asarray(res["loss"])))
      raise UserError(f"the inversion diverged: its {loss} loss is not finite for target(s) "
                      f"{', '.join(map(str, bad))} (lr {lr}, optimizer {optimizer}); try a lower "
                      "--lr, or --optimizer adam")
    res["psnr_db"] = inv.psnr(res["images"], targets)
    res["ssim"] = inv.ssim(res["images"], targets)
    return res

  def score(self, num: int = 2000, seed: int = 0, reference: str = "",
            judge: str = "") -> Dict[str, Any]:
    """`eval.py gan-score` for this checkpoint: {'scores': {...}, the real-vs-real floor,
    'num_samples', 'judge'} (MNIST: the judge's distances, `judge` a run dir or .npz other than
    eval.judge; photo folders: SWD and random-CNN precision / recall / density / coverage,
    against the held-out photos or `reference`)."""
    from gm.commands.gan import score_checkpoints  # pylint: disable=g-import-not-at-top
    result = score_checkpoints(self, [self.step], num=num, seed=seed, reference=reference,
                               judge=judge)
    (record,) = result.pop("scores")
    return {**result, "scores": {k: v for k, v in record.items() if k != "step"}}

  def health(self, scores: str = "") -> List[Tuple[Any, str]]:
    """`eval.py health`: [(epoch, warning)], the health warnings the current rules give over
    metrics.jsonl (GAN runs); `scores`: a `gan-score --all` history (gan_score_history.json)
    whose scores replace the logged quality scores at the same steps."""
    from gm.commands.gan import health_warnings  # pylint: disable=g-import-not-at-top
    self.require("gan")
    return health_warnings(self, scores)


def load_run(workdir: str, step: Union[str, int] = "latest", raw: bool = False) -> Run:
  """The run in `workdir` (a train.py --workdir) at checkpoint `step` ('latest', 'best' by the
  logged quality number, or a step number); `raw`: GANs with a generator EMA use the trained
  weights instead of their average."""
  return Run(workdir, str(step), raw)


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """A config as train.py builds it: 'configs/<name>.py[:arg]' plus 'key=value' overrides."""
  return config_utils.load_file(spec, list(overrides))


def fit(config: ml_collections.ConfigDict, workdir: str) -> Run:
  """Trains `config` in `workdir` (resuming it if it holds the same config) as train.py does;
  returns the run at its last checkpoint."""
  from gm import train  # pylint: disable=g-import-not-at-top
  train.train_and_evaluate(config, workdir)
  return load_run(workdir)


__all__ = ["Run", "fit", "load_config", "load_run"]
