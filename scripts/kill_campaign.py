r"""Kill campaign: random SIGKILLs and damaged checkpoints against a smoke run; all must end exact.

  nice -n 19 python scripts/kill_campaign.py --kills 50 --corruptions 20
  python scripts/kill_campaign.py --kills 4 --corruptions 2 --trials 1   # a quick look

An uninterrupted reference run of the MLP-GAN smoke config (4 epochs of 4 steps,
a checkpoint every epoch) is trained first. Then `--trials` runs start from an
empty directory each; every trial gets its share of the kills and corruptions
in a random order:
- a kill starts `train.py` (the same command each time) and SIGKILLs it: at a
  random moment within the reference run's wall time (imports, restore and
  verification, compiles, steps, saves, moving a damaged checkpoint aside), or,
  one time in three, at a named point (`GM_KILL_AT`: right after an epoch's
  metrics line, or in the middle of an Orbax write);
- a corruption damages the newest checkpoint on disk (`tests/corrupt.py`: bit
  flips at a random offset of an array file, truncation, a deleted array file,
  damaged Orbax metadata, a changed `meta` item, an emptied directory).
The trial then runs `train.py` to the end and compares with the reference: the
sha256 of every array of every checkpoint (the digests each checkpoint holds,
so parameters and optimizer states bit for bit), the checkpoint list, and
metrics.jsonl (without its time/ fields). Damaged checkpoints must have been
moved to checkpoints.damaged/, none deleted. Exit status 0 only if every trial
ends identical.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import corrupt as faults  # noqa: E402  (no JAX: this process only starts train.py)

EPOCHS = 4
OVERRIDES = {"train.num_epochs": EPOCHS, "train.checkpoint_every": 1, "train.progress": False,
             "train.tensorboard": False, "data.num_train": 256, "data.num_test": 128}


def command(workdir):
  return [sys.executable, os.path.join(ROOT, "train.py"), "--config",
          os.path.join(ROOT, "configs/gan_mlp_mnist.py:smoke"), "--workdir", workdir,
          *[f"--config.{k}={v}" for k, v in OVERRIDES.items()]]


def start(workdir, env, kill_at=None):
  env = dict(env)
  if kill_at:
    env["GM_KILL_AT"] = kill_at
  return subprocess.Popen(command(workdir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def summary(workdir):
  """(checkpoint steps, {step: array digests}, metrics records without time/*)."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  steps = sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  digests = {}
  for s in steps:
    with open(os.path.join(ckpt_dir, str(s), "meta", "metadata")) as f:
      digests[s] = json.load(f)["integrity"]["arrays"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [{k: v for k, v in json.loads(l).items() if not k.startswith("time/")} for l in f]
  return steps, digests, records


def newest_checkpoint(workdir):
  d = os.path.join(workdir, "checkpoints")
  steps = sorted(int(s) for s in os.listdir(d) if s.isdigit()) if os.path.isdir(d) else []
  return os.path.join(d, str(steps[-1])) if steps else None


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--kills", type=int, default=50)
  p.add_argument("--corruptions", type=int, default=20)
  p.add_argument("--trials", type=int, default=10, help="fresh runs the events are spread over")
  p.add_argument("--seed", type=int, default=0, help="0: a random seed (printed)")
  p.add_argument("--keep", default="", help="keep the run directories under this folder")
  args = p.parse_args(argv)
  seed = args.seed or random.randrange(1, 1 << 30)
  rng = random.Random(seed)
  root = args.keep or tempfile.mkdtemp(prefix="gm_kill_campaign_")
  os.makedirs(root, exist_ok=True)
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "JAX_COMPILATION_CACHE_DIR": os.path.join(root, "jax_cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  env.pop("GM_KILL_AT", None)
  print(f"seed {seed}; runs under {root}", flush=True)
  t0 = time.time()

  reference = os.path.join(root, "reference")
  for _ in range(2):  # The second, with a warm compilation cache, times a run.
    shutil.rmtree(reference, ignore_errors=True)
    t = time.time()
    p_ = start(reference, env)
    _, err = p_.communicate()
    if p_.returncode != 0:
      sys.exit(f"reference run failed: {err[-2000:]}")
    ref_s = time.time() - t
  ref = summary(reference)
  print(f"reference: {ref_s:.1f} s, checkpoints {ref[0]}", flush=True)

  per_trial = [[] for _ in range(args.trials)]
  for i in range(args.kills):
    per_trial[i % args.trials].append("kill")
  for i in range(args.corruptions):
    per_trial[(args.kills + i) % args.trials].append("corrupt")
  totals = {"kills": 0, "named": 0, "left_partial": 0, "corruptions": 0, "moved": 0,
            "trials_ok": 0, "runs": 0}
  kinds = {}
  failures = []
  for trial, events in enumerate(per_trial):
    rng.shuffle(events)
    wd = os.path.join(root, f"trial{trial}")
    shutil.rmtree(wd, ignore_errors=True)
    corrupted = 0
    pending = list(events)
    while pending:
      event = pending.pop(0)
      if event == "corrupt":
        step_dir = newest_checkpoint(wd)
        if step_dir is None:  # Nothing written yet: damage the first checkpoint once there is one.
          if "kill" in pending:
            pending.insert(pending.index("kill") + 1, "corrupt")  # After the next kill.
            continue
          totals["runs"] += 1  # Only corruptions left: train to the end first.
          start(wd, env).communicate()
          step_dir = newest_checkpoint(wd)
          if step_dir is None:
            failures.append(f"trial {trial}: a run to the end wrote no checkpoint")
            continue
        kind = rng.choice(faults.CORRUPTIONS)
        did = faults.corrupt(step_dir, kind, rng.random())
        kinds[kind] = kinds.get(kind, 0) + 1
        totals["corruptions"] += 1
        corrupted += 1
        print(f"trial {trial}: corrupt checkpoint {os.path.basename(step_dir)}: {did}", flush=True)
        continue
      limit = ref_s
      for _ in range(50):  # Until a kill lands (a run may finish before its moment).
        named = rng.random() < 1 / 3
        kill_at = (f"{rng.choice(['epoch_logged', 'checkpoint_writing'])}:{rng.randint(1, EPOCHS)}"
                   if named else None)
        before = set(os.listdir(os.path.join(wd, "checkpoints"))) if os.path.isdir(
            os.path.join(wd, "checkpoints")) else set()
        proc = start(wd, env, kill_at)
        totals["runs"] += 1
        if named:
          _, err = proc.communicate()
        else:
          delay = rng.uniform(0.3, limit)
          t_start = time.time()
          try:
            _, err = proc.communicate(timeout=delay)
            limit = max(0.5, time.time() - t_start)  # Finished first: aim within such a run.
          except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
        if proc.returncode == -signal.SIGKILL:
          totals["kills"] += 1
          totals["named"] += named
          after = set(os.listdir(os.path.join(wd, "checkpoints"))) if os.path.isdir(
              os.path.join(wd, "checkpoints")) else set()
          partial = any("tmp" in d for d in after - before)
          totals["left_partial"] += partial
          print(f"trial {trial}: killed ({kill_at or f'after {delay:.1f} s'})"
                f"{', a partial checkpoint left' if partial else ''}", flush=True)
          break
        if proc.returncode not in (0, -signal.SIGKILL):
          failures.append(f"trial {trial}: train.py exited {proc.returncode}: {err[-500:]}")
          break
    p_ = start(wd, env)
    _, err = p_.communicate()
    totals["runs"] += 1
    if p_.returncode != 0:
      failures.append(f"trial {trial}: final run exited {p_.returncode}: {err[-1500:]}")
      continue
    got = summary(wd)
    aside = os.path.join(wd, "checkpoints.damaged")
    moved = len(os.listdir(aside)) if os.path.isdir(aside) else 0
    totals["moved"] += moved
    same = got == ref
    print(f"trial {trial}: {'IDENTICAL' if same else 'DIFFERENT'} to the reference; "
          f"{moved} damaged checkpoints in checkpoints.damaged/ ({corrupted} corruptions)",
          flush=True)
    if same and moved <= corrupted:
      totals["trials_ok"] += 1
    else:
      what = [n for n, a, b in zip(("checkpoints", "arrays", "metrics"), got, ref) if a != b]
      failures.append(f"trial {trial}: differs in {', '.join(what) or 'nothing'}; "
                      f"{moved} moved aside for {corrupted} corruptions")
  minutes = (time.time() - t0) / 60
  print(f"\n{args.trials} trials, seed {seed}, {minutes:.1f} min: {totals['kills']} SIGKILLs "
        f"({totals['named']} at named points, {totals['left_partial']} left a partial "
        f"checkpoint), {totals['corruptions']} corruptions "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), {totals['moved']} damaged "
        f"checkpoints moved aside (none deleted), {totals['runs']} train.py runs")
  print(f"ended bit-identical to the uninterrupted run: {totals['trials_ok']} of {args.trials} "
        "trials")
  for f in failures:
    print("FAILED:", f)
  if not args.keep:
    shutil.rmtree(root, ignore_errors=True)
  return 0 if totals["trials_ok"] == args.trials and not failures else 1


if __name__ == "__main__":
  sys.exit(main())
