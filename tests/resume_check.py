"""Bit-exact resume, checked in process with the loop's own pieces.

A run stopped after an epoch and resumed from its checkpoint must continue
bit-identical to the uninterrupted run: everything that changes (batch-norm
statistics, both Optax states, the step) is in the checkpoint, and every random
draw (noise, dropout, augmentation, label noise, data order) is a function of the
seed and the step. The tests that use this (test_cake: the cake DCGAN smoke, with
batch norm in D read in running mode by the generator step, flip/zoom/rotate,
dropout and label noise; test_gan: the conditional DCGAN, with batch norm in G and
one-hot labels) leave out the loop's evaluation and files, which are the same for
every family and covered by the end-to-end resume tests of the VAE and MLP GAN.
"""

import jax
import jax.numpy as jnp
import numpy as np

from gm import checkpoint
from gm.train import loop


def straight_and_resumed(config, dataset, workdir, epochs: int = 2):
  """Epochs 1..`epochs` straight, and the last one again from the checkpoint of the one before.
  Returns (straight, resumed).

  The pieces are the loop's (`loop.build`, `EpochRunner`, the Orbax `Checkpointer`). The
  checkpoint is restored into zeros of the state's structure, so every value of the resumed
  state comes from the file, and the resumed epoch runs on the same compiled step. (A fresh
  `loop.build`, as a new process makes, holds new optimizer and module objects as pytree
  metadata, and jit would compile the same step again: ~10 s of CPU for the cake smoke.)
  Likewise both states enter the runner as plain, uncommitted arrays (copied through the
  host: the same values): a fresh state's step counters are weak-typed Python ints, Orbax
  restores int32 arrays committed to the device, and jit compiles once for each kind.
  """
  family, run, _ = loop.build(config, dataset)
  run = _plain(run)
  runner = loop.EpochRunner(family, family.examples_per_step(config.train.batch_size),
                            len(dataset.train["image"]), "loop")
  data = {k: jnp.asarray(v) for k, v in dataset.train.items()}
  for epoch in range(1, epochs):
    run, _ = runner(run, data, epoch)
  ckpt = checkpoint.Checkpointer(workdir)
  ckpt.save(int(run.step), run, {"epoch": epochs - 1})
  template = jax.tree.map(jnp.zeros_like, run)
  straight, _ = runner(run, data, epochs)  # Donates `run`.
  restored, _ = ckpt.restore(ckpt.latest_step(), template)
  ckpt.close()
  resumed, _ = runner(_plain(restored), data, epochs)
  return straight, resumed


def _plain(tree):
  return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), tree)


def moved_means(batch_stats):
  """Names of the batch-norm running means that left their initial zeros."""
  return [jax.tree_util.keystr(p) for p, v in jax.tree_util.tree_leaves_with_path(batch_stats)
          if "mean" in jax.tree_util.keystr(p) and np.any(np.asarray(v) != 0)]
