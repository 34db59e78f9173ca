"""`eval.py verify`: checks every checkpoint of a run and its other files; prints a table.

Each checkpoint is restored in full and its digests are checked (`gm.integrity`);
config.json and monitor.npz are compared with the digests the newest verified
checkpoint recorded, monitor.npz's zip CRC-32s are checked, and metrics.jsonl
must hold a JSON object per line and a line for every checkpoint. Exit status 0
only if everything is intact. It writes nothing, so it also runs on a
read-only copy of a run.
"""

import os

from gm import checkpoint, integrity
from gm.commands.base import command
from gm.errors import UserError


def _rows(ctx):
  """[(what, ok, status, detail)] for the run in ctx."""
  rows, files, recorded_at = [], None, None
  ckpt = checkpoint.Checkpointer(ctx.workdir, create=False)
  try:
    steps = ckpt.steps()
    for step in reversed(steps):
      what = f"checkpoint {step}"
      try:
        _, meta = ckpt.restore(step, ctx.target, note=False)
      except integrity.Damaged as e:
        rows.append((what, False, "DAMAGED", e.reason))
        continue
      except UserError as e:  # Another model's arrays.
        rows.append((what, False, "FOREIGN", str(e).split(" was ", 1)[-1][:160]))
        continue
      record = meta.get(integrity.KEY)
      if record is None:
        rows.append((what, True, "unverified", "restores; written before checkpoints carried "
                                               "digests"))
        continue
      rows.append((what, True, "intact", f"{len(record['arrays'])} arrays and meta, sha256 "
                                         "verified"))
      if files is None:
        files, recorded_at = record.get("files", {}), step
  finally:
    ckpt.close()
  rows.reverse()
  aside = os.path.join(ctx.workdir, checkpoint.DAMAGED_DIR)
  if os.path.isdir(aside):
    rows.append((checkpoint.DAMAGED_DIR + "/", True, "set aside",
                 f"moved out of the history earlier: {', '.join(sorted(os.listdir(aside)))}"))
  files = files or {}
  rows.append(("config.json", *_status(integrity.check_config(
      ctx.workdir, files.get("config.json"), recorded_at))))
  rows.append(("monitor.npz", *_status(integrity.check_monitor(
      ctx.workdir, files.get("monitor.npz"), recorded_at))))
  rows.append(("metrics.jsonl", *_status(integrity.check_metrics(ctx.workdir, steps))))
  return rows


def _status(result):
  ok, detail = result
  return ok, "intact" if ok else "DAMAGED", detail


@command("verify", "checks every checkpoint (digests) and config.json, monitor.npz, "
         "metrics.jsonl; prints a table, exit status 0 only if all is intact")
def verify(ctx, args):
  del args
  rows = _rows(ctx)
  width = max(len(r[0]) for r in rows)
  print(f"{'file':<{width}}  {'status':<10}  detail")
  for what, _, status, detail in rows:
    print(f"{what:<{width}}  {status:<10}  {detail}")
  bad = [r for r in rows if not r[1]]
  n_ckpt = sum(r[0].startswith("checkpoint ") for r in rows)
  if bad:
    names = ", ".join(r[0] for r in bad)
    raise UserError(f"{len(bad)} of {len(rows)} damaged in {ctx.workdir}: {names}; train.py "
                    "resumes from the newest intact checkpoint and moves damaged ones to "
                    f"{checkpoint.DAMAGED_DIR}/, eval.py takes --step <an intact step>; or restore "
                    "them from a copy")
  unverified = sum(r[2] == "unverified" for r in rows)
  print(f"all intact: {n_ckpt} checkpoints, config.json, monitor.npz, metrics.jsonl"
        + (f" ({unverified} checkpoints written before digests could not be verified)"
           if unverified else ""))
  return []
