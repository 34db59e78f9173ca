"""Classifier family: trains the MNIST judge (never on generated data)."""

import jax
import jax.numpy as jnp
import optax

from gm import optim
from gm.data import to_float
from gm.families.base import FAMILIES, Family, TrainState
from gm.models.classifier import JudgeCNN


@FAMILIES.register("classifier")
class Classifier(Family):
  """Cross-entropy training of `JudgeCNN`; test metrics: accuracy and NLL."""

  best_metric = ("test/accuracy", "max")

  def __init__(self, config):
    super().__init__(config)
    self.net = JudgeCNN(features=config.model.features, dropout=config.model.dropout)

  def inputs(self, batch):
    return to_float(batch["image"])

  def init(self, key, batch):
    params = self.net.init(key, self.inputs(batch))["params"]
    tx = optim.make_optimizer(self.config.optim, self.total_steps)
    return TrainState.create(apply_fn=self.net.apply, params=params, tx=tx)

  def logits_and_features(self, params, x):
    """Images in [0, 1] [B, 28, 28, 1] -> (logits [B, 10], features [B, F])."""
    return self.net.apply({"params": params}, x)

  def train_step(self, state, batch, key):
    def loss_fn(params):
      logits, _ = self.net.apply({"params": params}, self.inputs(batch), train=True,
                                 rngs={"dropout": key})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
      return loss, (logits.argmax(-1) == batch["label"]).mean()
    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), {"loss": loss, "accuracy": acc,
                                                "grad_norm": optim.global_norm(grads)}

  def eval_step(self, state, batch, key):
    del key
    logits, _ = self.logits_and_features(state.params, self.inputs(batch))
    return {"accuracy": (logits.argmax(-1) == batch["label"]).astype(jnp.float32),
            "nll": optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])}

  def monitor_inputs(self, key, test):
    del key
    return {"image": test["image"][:64], "label": test["label"][:64]}

  def monitor_images(self, state, inputs):
    """The fixed test digits, dimmed where the judge gets them wrong."""
    x = self.inputs(inputs)
    logits, _ = self.logits_and_features(state.params, x)
    right = (logits.argmax(-1) == inputs["label"])[:, None, None, None]
    return jnp.where(right, x, 0.3 * x)
