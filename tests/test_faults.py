"""Bad input, nothing lost: what a careless or hostile user can do, tried as they would.

Every fault runs `train.py` / `eval.py` in a subprocess and checks that it ends with
one line on stderr that starts with `error:` and says what to do (no traceback;
`--debug` shows one), and that every file of the run directory / data folder is
byte-for-byte the same afterwards, with the same mtime (new files only where a test
says so). Faults that need a run share one tiny MLP-GAN run (trained once per module)
and work on a copy of it.

Each test adds a row to FAULTS; `test_readme_fault_table` renders them as the table in
docs/faults.md between `<!-- faults:begin -->` and `<!-- faults:end -->` and checks it is
up to date (`GM_UPDATE_FAULT_TABLE=1 python -m pytest -q tests/test_faults.py`
writes it).
"""

import ctypes
import fnmatch
import glob
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FAULT_DOC = os.path.join(ROOT, "docs", "faults.md")  # Where the table lives.
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"

# Makes a run tiny; left out of the commands shown in the table.
TINY = ("--config.data.num_train=64", "--config.data.num_test=32", "--config.eval.batch_size=32",
        "--config.train.progress=false", "--config.train.tensorboard=false")
VAE = ("--config", "configs/vae_mnist.py:smoke")
GAN = ("--config", "configs/gan_mlp_mnist.py:smoke")
GAN_RUN = ("--config.model.noise_dim=4", "--config.train.num_epochs=1")  # The shared run's.
CAKE = ("--config", "configs/dcgan_cake.py:smoke")
HIDDEN = set(TINY) | set(GAN_RUN)

FAULTS = {}  # test id -> row of the fault table
ORDER = []   # test ids in the order of the table


# --- helpers -------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
  """One persistent JAX compilation cache for this module's subprocesses (a run resumed by a
  test compiles what the shared run compiled; this saves about half of the module's time)."""
  JAX_ENV["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
  yield
  JAX_ENV.pop("JAX_COMPILATION_CACHE_DIR")


JAX_ENV = {"JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def gm(script, *args, preexec_fn=None):
  env = {**os.environ, **JAX_ENV}
  return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600, preexec_fn=preexec_fn)


def snapshot(root):
  """relative path -> (sha256, size, mtime_ns) of every file; directories -> None."""
  out = {}
  if not os.path.exists(root):
    return out
  if os.path.isfile(root):
    return {".": _file_id(root)}
  for dirpath, dirnames, filenames in os.walk(root):
    for d in dirnames:
      out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
    for f in filenames:
      p = os.path.join(dirpath, f)
      out[os.path.relpath(p, root)] = _file_id(p)
  return out


def _file_id(path, size=None):
  with open(path, "rb") as f:
    data = f.read() if size is None else f.read(size)
  return hashlib.sha256(data).hexdigest(), len(data), os.stat(path).st_mtime_ns


def changes(root, before, after, new=(), grown=()):
  """What differs between two snapshots beyond the allowed: new paths matching `new`,
  files matching `grown` that only had bytes appended."""
  bad = []
  for rel, old in before.items():
    if rel not in after:
      bad.append(f"{rel} deleted")
    elif after[rel] != old:
      if any(fnmatch.fnmatch(rel, g) for g in grown):
        prefix = _file_id(os.path.join(root, rel), old[1])
        if prefix[:2] == old[:2]:
          continue
      bad.append(f"{rel} changed")
  bad += [f"{rel} new" for rel in sorted(set(after) - set(before))
          if not any(fnmatch.fnmatch(rel, g) for g in new)]
  return bad


def config_diff(a, b):
  from gm import config_utils  # pylint: disable=g-import-not-at-top
  fa, fb = config_utils.flatten(a), config_utils.flatten(b)
  return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def check_error(r, code, *needles):
  """Exit `code`, the last stderr line `error: ...` holding every needle, no traceback."""
  lines = r.stderr.strip().splitlines()
  assert r.returncode == code, r.stderr[-3000:]
  assert lines and lines[-1].startswith("error: "), r.stderr[-3000:]
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  assert len(lines[-1]) < 600, lines[-1]
  for needle in needles:
    assert needle in lines[-1], (needle, lines[-1])
  return lines[-1]


def shown(text, paths):
  """`text` with the test's temporary paths replaced by placeholders."""
  for path, name in sorted(paths.items(), key=lambda kv: -len(kv[0])):
    text = text.replace(path, name)
  return text


def record(test_id, fault, script, args, exit_code, says, intact, paths):
  command = " ".join([script] + [a for a in args if a not in HIDDEN])
  FAULTS[test_id] = {"fault": fault, "command": shown(command, paths), "exit": str(exit_code),
                     "says": shown(says, paths), "intact": intact}


def log_message(line):
  """A log line without its timestamp / logger prefix (absl's or logging.basicConfig's)."""
  line = re.sub(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ", "", line)  # absl
  line = re.sub(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:", "", line)  # logging's default
  return re.sub(r"^\d\d:\d\d:\d\d \S+ ", "", line)  # cli.setup_logging's


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
  """One tiny MLP-GAN run (1 epoch: checkpoints 0 and 1, one metrics line).

  Made as checkpoint 0, then resumed for epoch 1: so the compilation cache holds what a
  resumed run compiles (restored arrays lower differently from fresh ones). In
  subprocesses, so that this process has no JAX threads when it forks the others.
  """
  wd = str(tmp_path_factory.mktemp("base") / "run")
  for epochs in (0, 1):
    r = gm("train.py", *GAN, "--workdir", wd, *GAN_RUN, *TINY, f"--config.train.num_epochs={epochs}")
    assert r.returncode == 0, r.stderr[-3000:]
  for bak in glob.glob(os.path.join(wd, "config.json.*.bak")):
    os.remove(bak)  # num_epochs 0 -> 1 kept the first config.json; the run is as if made at once.
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["0", "1"]
  return wd


@pytest.fixture
def run(base_run, tmp_path):
  """A private copy of the shared run (mtimes kept)."""
  wd = str(tmp_path / "run")
  shutil.copytree(base_run, wd)
  return wd


# --- bad configs: nothing is created --------------------------------------------------------

CONFIG_FAULTS = [
    # id, fault, extra args, exit code, what the message must hold
    ("unknown_key", "unknown config key", (*VAE, "--config.train.bogus=1"), 2,
     ("unknown config key train.bogus", "valid keys under train: batch_size")),
    ("typo_key", "misspelt config key", (*VAE, "--config.optim.lrr=0.1"), 2,
     ("did you mean optim.lr?",)),
    ("wrong_type", "wrong type", (*VAE, "--config.train.batch_size=abc"), 2,
     ("takes an integer", "e.g. --config.train.batch_size=32")),
    ("zero_batch", "zero batch size", (*VAE, "--config.train.batch_size=0"), 2,
     ("train.batch_size=0 (must be >= 1)",)),
    ("negative_epochs", "negative number of epochs", (*VAE, "--config.train.num_epochs=-1"), 2,
     ("train.num_epochs=-1 (must be >= 0)",)),
    ("negative_latent", "negative model size", (*VAE, "--config.model.latent_dim=-2"), 2,
     ("model.latent_dim=-2 (must be >= 1)",)),
    ("zero_checkpoint_every", "checkpoint interval 0",
     (*VAE, "--config.train.checkpoint_every=0"), 2, ("train.checkpoint_every=0 (must be >= 1)",)),
    ("missing_config", "config file that does not exist", ("--config", "configs/nope.py"), 2,
     ("config file configs/nope.py does not exist",)),
    ("bad_config_arg", "unknown config argument", ("--config", "configs/vae_mnist.py:smokee"), 2,
     ("unknown config arg 'smokee'; valid: latent, quick, smoke",)),
    ("model_field", "a model option the architecture lacks",
     ("--config", "configs/dcgan_mnist.py:smoke",
      "--config.model.d.dropout=0.3"), 2,
     ("unknown config key model.d.dropout", "leak, spectral_norm"),),
]
ORDER += [c[0] for c in CONFIG_FAULTS]


@pytest.mark.parametrize("test_id,fault,args,code,needles", CONFIG_FAULTS,
                         ids=[c[0] for c in CONFIG_FAULTS])
def test_bad_config_creates_nothing(tmp_path, test_id, fault, args, code, needles):
  wd = str(tmp_path / "new")
  args = (*args[:2], "--workdir", wd, *args[2:], *TINY)
  r = gm("train.py", *args)
  says = check_error(r, code, *needles)
  assert not os.listdir(tmp_path)  # No workdir, nothing else.
  record(test_id, fault, "train.py", args, r.returncode, says, "yes (nothing created)",
         {wd: "<new dir>"})


def test_debug_shows_the_traceback(tmp_path):
  r = gm("train.py", *VAE, "--workdir", str(tmp_path / "new"), "--config.train.batch_size=0",
         "--debug")
  assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr
  assert r.stderr.strip().splitlines()[-1].startswith("error: config value out of range")


# --- the workdir ----------------------------------------------------------------------------

ORDER += ["workdir_file"]


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("precious\n")
  before = snapshot(str(tmp_path))
  args = (*VAE, "--workdir", str(path), *TINY)
  r = gm("train.py", *args)
  says = check_error(r, 2, "is a file; pass a directory path")
  assert not changes(str(tmp_path), before, snapshot(str(tmp_path)))
  record("workdir_file", "workdir is a regular file", "train.py", args, r.returncode, says,
         "yes", {str(path): "<file>"})


_LIBC = ctypes.CDLL(None, use_errno=True)  # Loaded here: the forked child only calls it.


def _drop_permission_override():
  """preexec_fn: as root, give up the capabilities that ignore file permissions (the process
  then meets permission bits as any user does). Running as `nobody` is no option here: the
  Python interpreter lives under /root (mode 700)."""
  for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
    if _LIBC.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
      raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture(scope="module")
def as_user(tmp_path_factory):
  """A preexec_fn under which a read-only directory really is read-only (else skip)."""
  preexec = _drop_permission_override if os.geteuid() == 0 else None
  d = tmp_path_factory.mktemp("probe")
  os.chmod(d, 0o555)
  try:
    r = subprocess.run([sys.executable, "-c", f"open({str(d / 'x')!r}, 'w')"],
                       preexec_fn=preexec, capture_output=True, text=True)
  except (OSError, subprocess.SubprocessError) as e:
    pytest.skip(f"cannot drop root's permission override to simulate a read-only workdir: {e}")
  finally:
    os.chmod(d, 0o755)
  if r.returncode == 0:
    pytest.skip("running as root and dropping CAP_DAC_OVERRIDE did not make a 555 directory "
                "read-only, so a read-only workdir cannot be simulated")
  return preexec


def _make_read_only(root, writable=False):
  for dirpath, dirnames, filenames in os.walk(root):
    for f in filenames:
      os.chmod(os.path.join(dirpath, f), 0o644 if writable else 0o444)
    os.chmod(dirpath, 0o755 if writable else 0o555)


READ_ONLY = [
    ("read_only_train", "read-only workdir (resume)", "train.py", (*GAN, "--workdir", "{run}",
                                                                 *GAN_RUN, *TINY),
     ("Permission denied: <run>/train.lock; make <run> writable",)),
    ("read_only_eval", "read-only workdir (eval)", "eval.py",
     ("loss-curves", "--workdir", "{run}"), ("Permission denied: <run>/eval; make <run> writable",)),
]
ORDER += [c[0] for c in READ_ONLY]


@pytest.mark.parametrize("test_id,fault,script,args,needles", READ_ONLY,
                         ids=[c[0] for c in READ_ONLY])
def test_read_only_workdir(run, as_user, test_id, fault, script, args, needles):
  args = tuple(a.replace("{run}", run) for a in args)
  before = snapshot(run)
  _make_read_only(run)
  try:
    r = gm(script, *args, preexec_fn=as_user)
  finally:
    _make_read_only(run, writable=True)
  paths = {run: "<run>"}
  says = check_error(r, 1, *[n.replace("<run>", run) for n in needles])
  assert not changes(run, before, snapshot(run))
  record(test_id, fault, script, args, r.returncode, says, "yes", paths)


# --- checkpoints of another architecture ------------------------------------------------------

ORDER += ["other_arch_resume", "other_arch_eval"]


def test_resume_with_another_architecture(run):
  """The checkpoint is tried against the new model before config.json is replaced."""
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY, "--config.model.noise_dim=8",
          "--allow_config_change")
  r = gm("train.py", *args)
  says = check_error(r, 2, "checkpoint 1 in", "(8, 1024)", "(4, 1024)", "different model")
  assert not changes(run, before, snapshot(run))
  record("other_arch_resume", "checkpoint from another architecture (resume with "
         "`--allow_config_change`)", "train.py", args, r.returncode, says, "yes", {run: "<run>"})


def test_eval_with_another_architecture(run):
  cfg = os.path.join(run, "config.json")
  config = json.load(open(cfg))
  config["model"]["noise_dim"] = 8  # As if config.json belonged to another model.
  with open(cfg, "w") as f:
    json.dump(config, f)
  before = snapshot(run)
  args = ("samples", "--workdir", run)
  r = gm("eval.py", *args)
  says = check_error(r, 2, "checkpoint 1 in", "(8, 1024)", "(4, 1024)")
  assert re.search("does not match|different model", says)
  assert not changes(run, before, snapshot(run))
  record("other_arch_eval", "checkpoint from another architecture (eval; config.json edited)",
         "eval.py", args, r.returncode, says, "yes", {run: "<run>"})


# --- metrics.jsonl and --step -----------------------------------------------------------------

ORDER += ["metrics_garbage", "metrics_truncated", "missing_step"]


def test_garbage_line_in_metrics(run):
  path = os.path.join(run, "metrics.jsonl")
  lines = open(path).read().splitlines(keepends=True)
  with open(path, "w") as f:
    f.writelines(["this is not json\n"] + lines)
  before = snapshot(run)
  args = ("loss-curves", "--workdir", run)
  r = gm("eval.py", *args)
  says = check_error(r, 2, "metrics.jsonl line 1 is not a JSON object; fix or delete that line")
  assert not changes(run, before, snapshot(run))
  record("metrics_garbage", "garbage line in `metrics.jsonl`", "eval.py", args, r.returncode,
         says, "yes", {run: "<run>"})


def test_truncated_last_line_in_metrics(run):
  """A process killed while appending leaves a torn last line: skipped with a warning."""
  path = os.path.join(run, "metrics.jsonl")
  with open(path, "a") as f:
    f.write('{"step": 2, "epoch": 2, "train/d_lo')
  before = snapshot(run)
  args = ("loss-curves", "--workdir", run)
  r = gm("eval.py", *args)
  assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
  warning = [l for l in r.stderr.splitlines() if "is incomplete" in l]
  assert len(warning) == 1 and "line 2" in warning[0]
  assert r.stdout.split() == [os.path.join(run, "eval", "loss_curves.png")]
  assert not changes(run, before, snapshot(run), new=("eval/", "eval/loss_curves.png"))
  record("metrics_truncated", "torn last line in `metrics.jsonl` (killed mid-write)", "eval.py",
         args, r.returncode, "warning: " + log_message(warning[0]),
         "yes (the plot is written; the next train.py run moves the torn line to "
         "metrics.dropped.jsonl)", {run: "<run>"})


def test_eval_step_that_does_not_exist(run):
  before = snapshot(run)
  args = ("samples", "--workdir", run, "--step", "7")
  r = gm("eval.py", *args)
  says = check_error(r, 2, "no checkpoint at step 7; available: 0, 1")
  assert not changes(run, before, snapshot(run))
  record("missing_step", "eval `--step` that does not exist", "eval.py", args, r.returncode,
         says, "yes", {run: "<run>"})


ORDER += ["image_size"]


def test_image_size_the_generator_does_not_draw(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  photos = tmp_path / "photos"
  photos.mkdir()
  for i in range(72):
    Image.new("RGB", (80, 80), (i, 2 * i, 3 * i)).save(photos / f"{i}.png")
  wd, cache = str(tmp_path / "new"), str(tmp_path / "cache")
  args = (*CAKE, "--workdir", wd, f"--config.data.dir={photos}", f"--config.data.cache_dir={cache}",
          "--config.data.image_size=48", *TINY)
  r = gm("train.py", *args)
  says = check_error(r, 2, "48x48x3", "64x64x3", "--config.data.image_size=64")
  assert not os.path.exists(wd)
  record("image_size", "an image size the generator does not draw", "train.py",
         [a for a in args if not a.startswith("--config.data.cache_dir")], r.returncode, says,
         "yes (nothing created)", {wd: "<new dir>", str(photos): "<photos>"})


EVAL_FLAG_FAULTS = [
    # id, fault, args after the command and --workdir, what the message must hold
    ("eval_nan_flag", "a flag that is not a number (`--lr nan`)",
     ("invert", "--index", "0", "--steps", "5", "--lr", "nan"), ("--lr nan: pass a finite number",)),
    ("eval_label_unconditional", "`--label` for a run without classes", ("samples", "--label", "3"),
     ("--label applies to conditional runs",)),
    ("eval_ms_huge", "a GIF frame longer than GIF allows", ("evolution", "--ms", "1000000000"),
     ("at most 655350 ms",)),
]
ORDER += [c[0] for c in EVAL_FLAG_FAULTS]


@pytest.mark.parametrize("test_id,fault,args,needles", EVAL_FLAG_FAULTS,
                         ids=[c[0] for c in EVAL_FLAG_FAULTS])
def test_bad_eval_flag_writes_nothing(run, test_id, fault, args, needles):
  before = snapshot(run)
  args = (args[0], "--workdir", run, *args[1:])
  r = gm("eval.py", *args)
  says = check_error(r, 2, *needles)
  assert not changes(run, before, snapshot(run))
  record(test_id, fault, "eval.py", args, r.returncode, says, "yes (nothing written)",
         {run: "<run>"})


# --- image folders ----------------------------------------------------------------------------

ORDER += ["folder_non_images", "folder_empty"]


@pytest.mark.parametrize("test_id,files", [("folder_non_images", ("a.jpg", "b.png", "c.webp")),
                                           ("folder_empty", ())],
                         ids=["non_images", "empty"])
def test_image_folder_without_images(tmp_path, test_id, files):
  folder = tmp_path / "photos"
  folder.mkdir()
  for name in files:
    (folder / name).write_text(f"not an image, just text called {name}\n")
  cache, wd = tmp_path / "cache", tmp_path / "new"
  before = snapshot(str(tmp_path))
  args = (*CAKE, "--workdir", str(wd), f"--config.data.dir={folder}",
          f"--config.data.cache_dir={cache}", *TINY)
  r = gm("train.py", *args)
  needle = ("none of the 3 image files under" if files else "no images (.jpg, .jpeg, .png, "
            ".webp) under")
  says = check_error(r, 2, needle)
  assert not changes(str(tmp_path), before, snapshot(str(tmp_path)))  # No workdir, no cache.
  record(test_id, "image folder of text files named .jpg/.png/.webp" if files else
         "empty image folder", "train.py", args, r.returncode, says,
         "yes (nothing created, no decode cache)",
         {str(folder): "<folder>", str(cache): "<cache>", str(wd): "<new dir>"})


# --- disk full --------------------------------------------------------------------------------

ORDER += ["disk_full"]
FILE_LIMIT = 1_000_000  # bytes: above config.json, monitor.npz, a sample grid; below the arrays


def _limit_file_size():
  """preexec_fn: writes past FILE_LIMIT fail with EFBIG, as on a full disk."""
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def test_disk_full_while_saving_a_checkpoint(run):
  sizes = {rel: v[1] for rel, v in snapshot(run).items() if v}
  assert max(s for rel, s in sizes.items() if not rel.startswith("checkpoints/")) < FILE_LIMIT
  assert max(s for rel, s in sizes.items() if rel.startswith("checkpoints/")) > FILE_LIMIT
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY, "--config.train.num_epochs=2")
  r = gm("train.py", *args, preexec_fn=_limit_file_size)
  says = check_error(r, 1, f"cannot write checkpoint {run}/checkpoints/2: File too large",
                     "free disk space and rerun the same command")
  # Epoch 2 ran: its metrics line and sample grid are written before its checkpoint. Extending
  # the run rewrote config.json with num_epochs 2 (as any extension does; the old one is kept).
  (bak,) = glob.glob(os.path.join(run, "config.json.*.bak"))
  assert config_diff(json.load(open(bak)), json.load(open(os.path.join(run, "config.json")))) == [
      "train.num_epochs"]
  assert changes(run, before, snapshot(run), grown=("metrics.jsonl",),
                 new=("samples/step_00000002.png", "checkpoints/2.orbax-checkpoint-tmp*",
                      "config.json.*.bak")) == ["config.json changed"]
  # The half-written checkpoint is neither listed by eval.py nor resumed from.
  from gm import checkpoint  # pylint: disable=g-import-not-at-top
  from gm.commands.base import RunContext  # pylint: disable=g-import-not-at-top
  assert RunContext(run).steps() == [0, 1]
  ckpt = checkpoint.Checkpointer(run, create=False)
  assert ckpt.latest_step() == 1
  ckpt.close()
  record("disk_full", f"disk full while saving a checkpoint (file size limit {FILE_LIMIT:,} "
         "bytes)", "train.py", args, r.returncode, says,
         "yes (epoch 2 added its metrics line and sample grid, and `config.json` has num_epochs 2, "
         "the old one kept as `.bak`, as extending a run does; the partial "
         "`checkpoints/2.orbax-checkpoint-tmp` is not listed by eval.py nor resumed from)",
         {run: "<run>"})


# --- damaged checkpoints and run files -------------------------------------------------------
# Damage done after a checkpoint was written (a disk error, a partial copy, a sync tool).
# eval.py names it and the intact steps; train.py resumes from the newest checkpoint that
# verifies, moves damaged ones to checkpoints.damaged/ (never deletes) and redoes the epochs.

ORDER += ["ckpt_flip_eval", "ckpt_flip_train", "ckpt_truncated", "ckpt_deleted", "ckpt_metadata",
          "ckpt_meta_item", "ckpt_empty_dir", "monitor_damaged", "other_arch_copy",
          "read_only_verify", "ckpt_legacy"]


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
  """A run of another architecture (noise_dim 8): only its checkpoint 0."""
  wd = str(tmp_path_factory.mktemp("other") / "run")
  r = gm("train.py", *GAN, "--workdir", wd, *GAN_RUN, *TINY, "--config.model.noise_dim=8",
         "--config.train.num_epochs=0")
  assert r.returncode == 0, r.stderr[-3000:]
  return wd


def _digests(workdir, step):
  with open(os.path.join(workdir, "checkpoints", str(step), "meta", "metadata")) as f:
    return json.load(f)["integrity"]["arrays"]


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if not k.startswith("time/")} for l in f]


def _under(snap, prefix):
  return {rel[len(prefix):]: v for rel, v in snap.items()
          if rel.startswith(prefix) and rel != prefix}


def _stable(says):
  """A message with the parts that depend on Orbax's file layout (which array lies where, byte
  offsets) replaced by placeholders, so the fault table does not change from run to run."""
  says = re.sub(r"digest mismatch in \.\S+?( and \d+ more)? \(", "digest mismatch in <array> (", says)
  says = re.sub(r"a file of array \S+ is", "a file of array <array> is", says)
  return re.sub(r"\[\d+, \d+\)", "[<from>, <to>)", says)


def _warning(r, needle):
  lines = [l for l in r.stderr.splitlines() if needle in l]
  assert len(lines) == 1, r.stderr[-3000:]
  return "warning: " + log_message(lines[0])


@pytest.mark.parametrize("test_id,kind,args,needles", [
    ("ckpt_flip_eval", "flip", ("samples",), ("is damaged: digest mismatch in .model.",
                                              "(its bytes changed since they were written)")),
    ("ckpt_truncated", "truncate", ("verify",), ("1 of 5 damaged in <run>: checkpoint 1;",)),
    ("ckpt_metadata", "metadata", ("samples",), ("is damaged: unreadable metadata: "
                                                 "state/_METADATA is not valid JSON",)),
    ("ckpt_meta_item", "meta_item", ("samples", "--step", "1"),
     ("is damaged: digest mismatch in meta/metadata",)),
], ids=["flip", "truncate", "metadata", "meta_item"])
def test_eval_of_a_damaged_checkpoint(run, test_id, kind, args, needles):
  """A one-line error naming the checkpoint and the damage, with the intact steps."""
  from tests import corrupt as faults  # pylint: disable=g-import-not-at-top  (no JAX)
  faults.corrupt(os.path.join(run, "checkpoints", "1"), kind)
  before = snapshot(run)
  args = (args[0], "--workdir", run, *args[1:])
  r = gm("eval.py", *args)
  needles = [n.replace("<run>", run) for n in needles]
  if args[0] == "verify":  # The table on stdout names the damage; the last line sums up.
    table = r.stdout.splitlines()
    assert [l.split()[:3] for l in table[1:3]] == [["checkpoint", "0", "intact"],
                                                    ["checkpoint", "1", "DAMAGED"]], r.stdout
    assert "is truncated (OUT_OF_RANGE: Requested byte range" in table[2], r.stdout
    assert all(l.split()[1] == "intact" for l in table[3:]), r.stdout
  else:
    needles += [f"checkpoint 1 in {run}/checkpoints", "; intact: 0; pass one with --step"]
  says = check_error(r, 2, *needles)
  assert not changes(run, before, snapshot(run))
  what = {"flip": "64 bytes flipped in the middle of the largest array file of the latest "
                  "checkpoint",
          "truncate": "the largest array file of the latest checkpoint truncated to 1,000 bytes "
                      "(`eval.py verify`)",
          "metadata": "damaged checkpoint metadata (16 zero bytes in `state/_METADATA`)",
          "meta_item": "damaged `meta` item (a digit of the epoch changed; the JSON still "
                       "parses)"}[kind]
  record(test_id, what, "eval.py", args, r.returncode, _stable(says), "yes", {run: "<run>"})


@pytest.mark.parametrize("test_id,kind", [("ckpt_flip_train", "flip"), ("ckpt_deleted", "delete")],
                         ids=["flip", "delete"])
def test_resume_routes_around_a_damaged_checkpoint(run, base_run, test_id, kind):
  """Resumes from checkpoint 0, redoes epoch 1 bit for bit; the damaged one is kept aside."""
  from tests import corrupt as faults  # pylint: disable=g-import-not-at-top
  faults.corrupt(os.path.join(run, "checkpoints", "1"), kind)
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY)
  r = gm("train.py", *args)
  assert r.returncode == 0, r.stderr[-3000:]
  says = _warning(r, "is damaged")
  assert f"checkpoint 1 in {run}/checkpoints is damaged: " in says
  assert f"; moved it to {run}/checkpoints.damaged/1" in says
  after = snapshot(run)
  # The damaged checkpoint, byte for byte (and mtime), where the warning says.
  assert _under(after, "checkpoints.damaged/1/") == _under(before, "checkpoints/1/")
  # Epoch 1 redone: the same arrays (sha256 of each), the same metrics line.
  assert _digests(run, 1) == _digests(base_run, 1)
  assert _records(run) == _records(base_run)
  with open(os.path.join(run, "metrics.dropped.jsonl")) as f:
    assert [json.loads(l)["step"] for l in f] == [1]
  rest = changes(run, {k: v for k, v in before.items() if not k.startswith("checkpoints/1/")},
                 {k: v for k, v in after.items() if not k.startswith(("checkpoints/1/",
                                                                      "checkpoints.damaged/"))},
                 new=("metrics.dropped.jsonl", "checkpoints.damaged/"))
  assert sorted(rest) == ["metrics.jsonl changed", "samples/step_00000001.png changed"], rest
  what = {"flip": "64 bytes flipped in the middle of the largest array file of the latest "
                  "checkpoint (resume)",
          "delete": "the largest array file of the latest checkpoint deleted (resume)"}[kind]
  record(test_id, what, "train.py", args, r.returncode, _stable(says),
         "nothing deleted: `checkpoints/1` moved to `checkpoints.damaged/1` byte for byte; epoch 1 "
         "redone from checkpoint 0 (checkpoint 1 again, every array's sha256 as in the "
         "uninterrupted run; its old metrics line moved to `metrics.dropped.jsonl`)",
         {run: "<run>"})


def test_resume_moves_an_empty_checkpoint_directory_aside(run):
  os.makedirs(os.path.join(run, "checkpoints", "2"))  # As a sync tool might leave one.
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY)
  r = gm("train.py", *args)
  assert r.returncode == 0, r.stderr[-3000:]
  says = _warning(r, "is damaged")
  assert f"checkpoint 2 in {run}/checkpoints is damaged: the directory is empty" in says
  assert "resuming from step 1 (epoch 1)" in r.stderr
  assert changes(run, before, snapshot(run), new=("checkpoints.damaged/",
                                                  "checkpoints.damaged/2/")) == [
      "checkpoints/2/ deleted"]
  record("ckpt_empty_dir", "empty checkpoint directory (`checkpoints/2/`, newest)", "train.py",
         args, r.returncode, says, "nothing deleted: the empty `checkpoints/2` moved to "
         "`checkpoints.damaged/2`; resumed from checkpoint 1 (nothing left to train)",
         {run: "<run>"})


def test_resume_redraws_a_damaged_monitor_file(run, base_run):
  """monitor.npz's zip CRC-32 fails: moved aside and drawn again from config.seed, the same arrays."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  path = os.path.join(run, "monitor.npz")
  data = bytearray(open(path, "rb").read())
  for i in range(16):
    data[len(data) // 2 + i] ^= 0xFF
  with open(path, "wb") as f:
    f.write(data)
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY)
  r = gm("train.py", *args)
  assert r.returncode == 0, r.stderr[-3000:]
  says = _warning(r, "monitor.npz is damaged")
  assert "Bad CRC-32" in says and f"moved it to {path}.damaged" in says
  assert open(path + ".damaged", "rb").read() == data
  with np.load(path) as new, np.load(os.path.join(base_run, "monitor.npz")) as old:
    assert sorted(new.files) == sorted(old.files)
    for k in old.files:
      np.testing.assert_array_equal(new[k], old[k])
  assert changes(run, before, snapshot(run), new=("monitor.npz.damaged",)) == [
      "monitor.npz changed"]
  record("monitor_damaged", "damaged `monitor.npz` (16 bytes flipped)", "train.py", args,
         r.returncode, says, "nothing deleted: the damaged file is `monitor.npz.damaged`; "
         "`monitor.npz` drawn again from config.seed (the same arrays)", {run: "<run>"})


def test_resume_with_a_checkpoint_copied_from_another_architecture(run, other_run):
  """Not damage: a model mismatch, an error as before; the copy is left where it is."""
  shutil.copytree(os.path.join(other_run, "checkpoints", "0"),
                  os.path.join(run, "checkpoints", "2"))
  before = snapshot(run)
  args = (*GAN, "--workdir", run, *GAN_RUN, *TINY)
  r = gm("train.py", *args)
  says = check_error(r, 2, f"checkpoint 2 in {run}/checkpoints was written by a different model",
                     "(4, 1024)", "(8, 1024)")
  assert not changes(run, before, snapshot(run))
  record("other_arch_copy", "checkpoint directory copied from a run of another architecture "
         "(`checkpoints/2`, newest)", "train.py", args, r.returncode, says, "yes (not moved: "
         "it is not damaged)", {run: "<run>"})


def test_verify_on_a_read_only_workdir(run, as_user):
  """verify reads every checkpoint in full and writes nothing."""
  before = snapshot(run)
  _make_read_only(run)
  args = ("verify", "--workdir", run)
  try:
    r = gm("eval.py", *args, preexec_fn=as_user)
  finally:
    _make_read_only(run, writable=True)
  assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
  lines = r.stdout.strip().splitlines()
  assert [l.split()[0] for l in lines[1:-1]] == ["checkpoint", "checkpoint", "config.json",
                                                 "monitor.npz", "metrics.jsonl"], r.stdout
  assert all(l.split()[2 if l.startswith("checkpoint ") else 1] == "intact" for l in lines[1:-1])
  assert lines[-1] == "all intact: 2 checkpoints, config.json, monitor.npz, metrics.jsonl"
  assert not changes(run, before, snapshot(run))
  record("read_only_verify", "read-only workdir (`eval.py verify`; last line of stdout)",
         "eval.py", args, r.returncode, lines[-1], "yes", {run: "<run>"})


def test_checkpoint_written_before_digests(run):
  """No digests in meta (as before this change): restores, with a note."""
  for step in (0, 1):
    path = os.path.join(run, "checkpoints", str(step), "meta", "metadata")
    meta = json.load(open(path))
    del meta["integrity"]
    with open(path, "w") as f:
      json.dump(meta, f)
  before = snapshot(run)
  args = ("samples", "--workdir", run)
  r = gm("eval.py", *args)
  assert r.returncode == 0, r.stderr[-3000:]
  says = _warning(r, "before checkpoints carried digests")
  assert "checkpoint 1 was written before" in says and "cannot be verified" in says
  assert not changes(run, before, snapshot(run), new=("eval/", "eval/samples_step1.png"))
  record("ckpt_legacy", "checkpoint written before digests (no `integrity` in its meta)",
         "eval.py", args, r.returncode, says, "yes (the samples are drawn)", {run: "<run>"})


# --- the fault table -------------------------------------------------------------------------

def cell(text, kind="md"):
  """One table cell. `|` is escaped in every kind (GitHub needs \\| inside `code` too).
  'code': the text as a code span (delimited by two backticks if it holds one: a message cut
  short may hold an odd number). 'md': our own text; `<`, `>`, `&` are escaped outside its
  `code` spans (else <run> is read as an HTML tag)."""
  text = " ".join(str(text).split()).replace("|", "\\|")
  if kind == "code":
    return f"`` {text} ``" if "`" in text else f"`{text}`"
  parts = text.split("`")
  for i in range(0, len(parts), 2):
    parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
  return "`".join(parts)


def render_table(rows):
  out = ["| fault | command | exit | what the user sees (last line of stderr) | files intact |",
         "|---|---|---|---|---|"]
  for r in rows:
    out.append("| " + " | ".join([cell(r["fault"]), cell(r["command"], "code"), r["exit"],
                                  cell(r["says"], "code"), cell(r["intact"])]) + " |")
  return "\n".join(out)


def test_readme_fault_table():
  missing = [t for t in ORDER if t not in FAULTS]
  if missing:
    pytest.skip(f"the table needs every fault test to pass in this process (under xdist, run "
                f"with --dist loadfile); missing: {', '.join(missing)}")
  table = render_table([FAULTS[t] for t in ORDER])
  text = open(FAULT_DOC).read()
  assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/faults.md needs the fault markers"
  head, rest = text.split(BEGIN)
  _, tail = rest.split(END)
  if os.environ.get("GM_UPDATE_FAULT_TABLE") == "1":
    with open(FAULT_DOC, "w") as f:
      f.write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return
  assert rest.split(END)[0].strip() == table, (
      "docs/faults.md's fault table is out of date: GM_UPDATE_FAULT_TABLE=1 python -m pytest -q "
      "tests/test_faults.py")
