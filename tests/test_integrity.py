"""Checkpoint digests (gm.integrity) and the checkpointer's handling of damage, in-process.

The user-facing faults (eval.py / train.py on a damaged run) are in tests/test_faults.py;
the kill campaign is scripts/kill_campaign.py.
"""

import json
import logging
import os

import numpy as np
import pytest

from gm import checkpoint, integrity
from tests import corrupt as faults
from gm.errors import UserError


def _tree():
  return {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(4, np.float32),
          "count": np.array(3, np.int32)}


def test_a_scalar_is_digested_by_value():
  """Orbax gives back a counter held as an int32 array as a Python int: the same digest."""
  assert integrity.array_digest(np.int32(3)) == integrity.array_digest(3)
  assert integrity.array_digest(np.float32(0.5)) == integrity.array_digest(0.5)
  assert integrity.array_digest(3) != integrity.array_digest(4)
  assert integrity.array_digest(np.zeros(3, np.float32)) != integrity.array_digest(
      np.zeros(3, np.int32))  # Same bytes, other dtype.


def test_sealed_meta_verifies_and_any_change_is_named():
  tree = _tree()
  meta = integrity.seal({"epoch": 2, "step": 8, "data": {"shape": (28, 28)}}, tree,
                        {"config.json": "ab"})
  meta = json.loads(json.dumps(meta))  # As the meta item stores it (tuples become lists).
  assert integrity.check(8, "/ckpts", meta, tree) is True
  flipped = {**tree, "w": tree["w"].copy()}
  flipped["w"][1, 2] = -1
  with pytest.raises(integrity.Damaged, match=r"checkpoint 8 in /ckpts is damaged: digest "
                                              r"mismatch in \['w'\] \(its bytes changed"):
    integrity.check(8, "/ckpts", meta, flipped)
  with pytest.raises(integrity.Damaged, match="digest mismatch in meta/metadata"):
    integrity.check(8, "/ckpts", {**meta, "epoch": 3}, tree)
  with pytest.raises(integrity.Damaged, match="digests list other arrays"):
    integrity.check(8, "/ckpts", meta, {**tree, "extra": np.ones(1)})
  legacy = {k: v for k, v in meta.items() if k != integrity.KEY}
  assert integrity.check(8, "/ckpts", legacy, flipped) is False  # Nothing to check against.
  assert isinstance(integrity.Damaged(1, "/d", "x"), UserError)  # A one-line error if uncaught.


def test_read_failures_are_told_from_model_mismatches():
  cause = ValueError('OUT_OF_RANGE: Error reading "model.g.params.Dense_0.kernel/0.0" in OCDBT '
                     'database at local file "/r/checkpoints/1/state/": Requested byte range '
                     '[1962, 17032) is not valid for value of size 1000')
  try:
    raise RuntimeError("Encountered error while reading array index") from cause
  except Exception as e:  # pylint: disable=broad-except
    why = integrity.read_failure(e)
  assert why == ("a file of array model.g.params.Dense_0.kernel/0.0 is truncated "
                 "(OUT_OF_RANGE: Requested byte range [1962, 17032) is not valid for value of "
                 "size 1000)")
  shape = ValueError("Requested shape: (8, 1024) is not compatible with the stored shape: "
                     "(4, 1024)")
  assert integrity.read_failure(shape) is None


def test_restore_newest_intact_moves_every_damaged_checkpoint_aside(tmp_path, caplog):
  wd = str(tmp_path / "run")
  ckpt = checkpoint.Checkpointer(wd)
  for step in (0, 1, 2):
    tree = {**_tree(), "count": np.array(step, np.int32)}
    ckpt.save(step, tree, {"epoch": step, "step": step})
  assert ckpt.restore_newest_intact(_tree())[0] == 2
  faults.corrupt(os.path.join(wd, "checkpoints", "2"), "meta_item")
  faults.corrupt(os.path.join(wd, "checkpoints", "1"), "empty")
  with caplog.at_level(logging.WARNING, logger="gm"):
    step, state, meta = ckpt.restore_newest_intact(_tree())
  assert (step, int(state["count"]), meta["epoch"]) == (0, 0, 0)
  assert ckpt.steps() == [0]
  assert sorted(os.listdir(os.path.join(wd, "checkpoints.damaged"))) == ["1", "2"]
  assert "checkpoint 2 in" in caplog.text and "checkpoints.damaged/2" in caplog.text
  # Damaged again at the same step: kept beside the first, nothing overwritten.
  ckpt.save(1, {**_tree(), "count": np.array(1, np.int32)}, {"epoch": 1, "step": 1})
  faults.corrupt(os.path.join(wd, "checkpoints", "1"), "metadata")
  faults.corrupt(os.path.join(wd, "checkpoints", "0"), "meta_item")
  assert ckpt.restore_newest_intact(_tree()) is None
  assert sorted(os.listdir(os.path.join(wd, "checkpoints.damaged"))) == ["0", "1", "1.2", "2"]
  assert ckpt.steps() == [] and ckpt.latest_step() is None
  ckpt.close()


def test_run_file_checks(tmp_path):
  wd = str(tmp_path)
  def write_config(cfg, name="config.json"):
    with open(os.path.join(wd, name), "w") as f:
      json.dump(cfg, f)

  recorded = {"seed": 0, "train": {"num_epochs": 4}}
  write_config(recorded)
  assert integrity.check_config(wd, recorded, 4) == (True, "as recorded by checkpoint 4")
  write_config({"seed": 0, "train": {"num_epochs": 9}})  # The run extended: resumable.
  ok, note = integrity.check_config(wd, recorded, 4)
  assert ok and "only in train.num_epochs" in note
  write_config({"seed": 1, "train": {"num_epochs": 4}})
  ok, note = integrity.check_config(wd, recorded, 4)
  assert not ok and "differs from the config checkpoint 4 was trained with at seed" in note
  write_config(recorded, "config.json.17.bak")  # Replaced on purpose, the recorded one kept.
  ok, note = integrity.check_config(wd, recorded, 4)
  assert ok and "config.json.17.bak" in note
  with open(os.path.join(wd, "config.json"), "w") as f:
    f.write('{"seed": 1, "tra')
  assert not integrity.check_config(wd, recorded, 4)[0]

  np.savez(os.path.join(wd, "monitor.npz"), z=np.arange(300, dtype=np.float32))
  recorded = integrity.npz_digest(integrity.read_npz(os.path.join(wd, "monitor.npz")))
  assert integrity.check_monitor(wd, recorded, 4)[0]
  with open(os.path.join(wd, "monitor.npz"), "r+b") as f:
    f.seek(500)
    f.write(b"\xff" * 8)
  ok, note = integrity.check_monitor(wd, recorded, 4)
  assert not ok and "CRC" in note

  lines = ['{"step": 4, "epoch": 1}\n', '{"step": 8, "epoch": 2}\n', '{"step": 12, "ep']
  with open(os.path.join(wd, "metrics.jsonl"), "w") as f:
    f.writelines(lines)
  ok, note = integrity.check_metrics(wd, [0, 4, 8])
  assert ok and "torn" in note  # A kill while appending: noted, not failed.
  assert integrity.check_metrics(wd, [0, 4, 8, 12]) == (False, "no line for checkpoint step 12")
