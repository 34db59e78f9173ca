"""Health checks of a training run: warnings (with the numbers) that the loop logs.

They read only the metrics records, so they apply to any family that logs the
quantities; the thresholds are the config's `health` group (GAN configs). Training
goes on after a warning.
"""

from typing import Any, Dict, List, Sequence, Tuple

import ml_collections
import numpy as np

from gm.losses import gan as gan_losses

Record = Dict[str, Any]


def warnings(config: ml_collections.ConfigDict, history: Sequence[Record],
             score: Tuple[str, str] = ("quality/swd", "min")) -> List[str]:
  """Warnings from the run's metrics records so far (oldest first); [] without `health`.

  `score`: the family's quality number and its direction (`Family.best_metric`).
  """
  if "health" not in config:
    return []
  probability = gan_losses.GAN_LOSSES.get(config.loss.name).probability
  return (d_wins(config.health, history, probability) + collapse(config.health, history)
          + degrading(config.health, history, *score))


def d_wins(h: ml_collections.ConfigDict, history: Sequence[Record], probability: bool) -> List[str]:
  """The discriminator winning outright for `h.d_win_epochs` epochs in a row: its loss under
  `h.d_win_loss`, or (probability losses) D(x) > 0.99 and D(G(z)) < 0.01."""
  n = h.d_win_epochs
  recent = history[-n:] if n else []

  def won(r):
    if r.get("train/d_loss", 1.0) < h.d_win_loss:
      return True
    return probability and r.get("train/d_real", 0.0) > 0.99 and r.get("train/d_fake", 1.0) < 0.01

  if not (n and len(recent) == n and all(won(r) for r in recent)):
    return []
  r = recent[-1]
  return [f"the discriminator has won for {n} epochs: d_loss {r.get('train/d_loss', 0):.3g}, "
          f"D(x) {r.get('train/d_real', 0):.3g}, D(G(z)) {r.get('train/d_fake', 0):.3g}; "
          "G gets no signal (try a lower optim_d.lr, label smoothing or augmentation)"]


def collapse(h: ml_collections.ConfigDict, history: Sequence[Record]) -> List[str]:
  """Samples whose spread (test/fake_std) is under `h.collapse_ratio` x the real images'."""
  r = history[-1] if history else {}
  if "test/fake_std" not in r or r["test/fake_std"] >= h.collapse_ratio * r["test/real_std"]:
    return []
  return [f"samples look collapsed: their spread {r['test/fake_std']:.3g} is under "
          f"{h.collapse_ratio} x the real images' {r['test/real_std']:.3g}"]


def degrading(h: ml_collections.ConfigDict, history: Sequence[Record], key: str,
              mode: str = "min") -> List[str]:
  """The quality score `key` drifting worse: its running median over the last
  `h.degrade_evals` scored checkpoints worse by more than `h.degrade_margin` (relative) than
  the best running median before it.

  A median of a few checkpoints rides out one lucky or unlucky score, so a rise that lasts
  is caught even when a dip interrupts it, and one bad score alone is not. A growing run
  (`train/grow_res`, `train/grow_alpha` logged) is compared within its current resolution
  stage and not checked while a stage fades in: the fade-in worsens the score by design.
  Checked only when the newest record carries the score: one warning per checkpoint while
  the drift lasts.
  """
  n = h.degrade_evals
  if not n or not history or key not in history[-1]:
    return []
  scored, stage = [], None
  for r in history:
    res, alpha = r.get("train/grow_res"), r.get("train/grow_alpha")
    if res is not None:  # Growing: a stage is a resolution after its fade-in.
      stage = (res, alpha is None or alpha >= 1.0)
    if key in r:
      scored.append((stage, r.get("epoch", r.get("step")), r[key]))
  if stage is not None and not stage[1]:
    return []  # Fading in.
  scored = [(e, v) for s, e, v in scored if s == stage]
  if len(scored) < n + 1:
    return []
  sign = 1.0 if mode == "min" else -1.0  # sign * value: larger is worse.
  values = [v for _, v in scored]
  medians = [float(np.median(values[i - n + 1:i + 1])) for i in range(n - 1, len(values))]
  now, best = medians[-1], min(medians[:-1], key=lambda m: sign * m)
  if sign * (now - best) <= h.degrade_margin * abs(best):
    return []
  best_epoch, best_score = min(scored, key=lambda ev: sign * ev[1])
  worse = f"{100 * abs(now - best) / abs(best):.0f}% " if best else ""
  trend = " -> ".join(f"{v:.4g}" for v in values[-n:])
  return [f"the run is degrading: {key}'s median over the last {n} scored checkpoints "
          f"({trend}) is {now:.4g}, {worse}worse than its best median {best:.4g}; look at the "
          f"samples (the best score: epoch {best_epoch}'s {best_score:.4g}; `eval.py --step best` "
          "picks the run's best scored checkpoint)"]


def replay(config: ml_collections.ConfigDict, history: Sequence[Record],
           score: Tuple[str, str] = ("quality/swd", "min")) -> List[Tuple[Any, str]]:
  """The warnings training would log over these records with the current rules, epoch by
  epoch: [(epoch, warning)] (`eval.py health`)."""
  return [(r.get("epoch"), w) for i, r in enumerate(history)
          for w in warnings(config, history[:i + 1], score)]
