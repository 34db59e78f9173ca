"""Health checks of a training run: warnings (with the numbers) that the loop logs.

They read only the metrics records, so they apply to any family that logs the
quantities; the thresholds are the config's `health` group (GAN configs). Training
goes on after a warning.
"""

from typing import Any, Dict, List, Sequence, Tuple

import ml_collections

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
  """The quality score `key` worse at each of the last `h.degrade_evals` scored checkpoints than
  at the one before, and the last worse than the run's best by more than `h.degrade_margin`
  (relative). Checked only when the newest record carries the score: one warning per checkpoint."""
  n = h.degrade_evals
  if not n or not history or key not in history[-1]:
    return []
  scored = [(r.get("epoch"), r[key]) for r in history if key in r]
  if len(scored) < n + 1:
    return []
  sign = 1.0 if mode == "min" else -1.0  # sign * value: larger is worse.
  tail = [v for _, v in scored[-(n + 1):]]
  if not all(sign * b > sign * a for a, b in zip(tail, tail[1:])):
    return []
  best_epoch, best = min(scored, key=lambda ev: sign * ev[1])
  last = tail[-1]
  if abs(last - best) <= h.degrade_margin * abs(best):
    return []
  trend = " -> ".join(f"{v:.4g}" for v in tail)
  return [f"the run is degrading: {key} worse at {n} checkpoints in a row ({trend}; best "
          f"{best:.4g} at epoch {best_epoch}); look at the samples, `--step best` picks epoch "
          f"{best_epoch}'s checkpoint"]
