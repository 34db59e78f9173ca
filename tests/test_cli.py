"""The command-line contract: config args, overrides, typos, eval errors."""

import os
import subprocess
import sys

import pytest

from gm import config_utils
from tests.conftest import ROOT, load_config


def _run(*args, cwd=ROOT):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                        env=env, timeout=300)


def test_parse_arg():
  args = config_utils.parse_arg("smoke,latent=25", smoke=False, latent=2)
  assert args.smoke is True and args.latent == 25
  with pytest.raises(ValueError, match="unknown config arg 'z'"):
    config_utils.parse_arg("z=3", smoke=False)
  assert config_utils.parse_arg("smoke=false", smoke=True).smoke is False
  for arg, match in [("smoke=abc", "write smoke=true or smoke=false"),  # Not silently False.
                     ("latent=abc", "latent takes an int, e.g. latent=2"),
                     ("latent", "'latent' takes a value"),
                     ("w=nan", "w takes a finite number")]:
    with pytest.raises(ValueError, match=match):
      config_utils.parse_arg(arg, smoke=False, latent=2, w=0.5)


def test_config_variants():
  assert load_config("vae_mnist", "latent=25").model.latent_dim == 25
  smoke = load_config("vae_mnist", "smoke")
  assert smoke.data.source == "embedded" and smoke.train.num_epochs == 2
  assert load_config("vae_mnist", "").data.source == "tfds"


def test_resume_differences_ignore_epochs():
  a = config_utils.to_dict(load_config("vae_mnist"))
  b = config_utils.to_dict(load_config("vae_mnist"))
  b["train"]["num_epochs"] = 50
  b["optim"]["lr"] = 0.5
  b["eval"]["score_every"] = 3           # what is measured, not how training goes
  b["train"]["on_nonfinite"] = "rollback"
  del a["train"]["max_rollbacks"]        # a run made before the option existed
  assert config_utils.differences(a, b) == ["optim.lr"]


def test_typo_in_override_key_names_the_key(tmp_path):
  r = _run("train.py", "--config", "configs/vae_mnist.py:smoke", "--workdir", str(tmp_path / "w"),
           "--config.optim.lrr=0.1")
  assert r.returncode != 0
  assert "lrr" in r.stderr
  assert not os.path.exists(tmp_path / "w")


def test_eval_on_a_directory_without_a_run(tmp_path):
  r = _run("eval.py", "samples", "--workdir", str(tmp_path))
  assert r.returncode == 2
  assert r.stderr.strip().splitlines()[-1].startswith("error:") and "no config.json" in r.stderr


@pytest.mark.parametrize("argv,says", [
    (["eval.py", "nope"], "invalid choice: 'nope'"),
    (["eval.py", "samples", "--workdir"], "--workdir: expected one argument"),
    (["eval.py", "samples", "--workdir", "runs/x", "--bogus", "2"], "unrecognized arguments"),
    (["scripts/cake_section.py", "--runs", "a=b", "--split", "x"], "invalid int value: 'x'"),
])
def test_usage_errors_are_one_line(argv, says):
  """argparse's usage block is not printed: one `error:` line naming the --help to read."""
  r = _run(*argv)
  assert r.returncode == 2 and r.stdout == ""
  assert len(r.stderr.strip().splitlines()) == 1, r.stderr
  assert r.stderr.startswith("error: ") and says in r.stderr and "--help)" in r.stderr


def test_out_of_device_memory_is_one_line_with_what_to_do():
  """A batch that does not fit: XLA's RESOURCE_EXHAUSTED becomes a one-line error, exit 2."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gm import cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(Exception) as info:
    jnp.zeros((10 ** 12,), jnp.float32).block_until_ready()  # 4 TB: refused by the allocator
  message, code = cli.describe(info.value)
  assert code == 2 and "\n" not in message
  assert message.startswith("out of device memory") and "train.batch_size" in message


def test_evolution_rows_are_evenly_spaced_from_first_to_last_checkpoint():
  from gm.commands.generic import evenly_spaced  # pylint: disable=g-import-not-at-top
  steps = list(range(0, 3100, 100))  # 31 checkpoints
  assert evenly_spaced(steps, 4) == [0, 1000, 2000, 3000]
  assert evenly_spaced(steps, 0) == steps and evenly_spaced(steps[:3], 5) == steps[:3]
  assert evenly_spaced(steps, 1) == [3000]
