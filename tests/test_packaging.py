"""pyproject.toml: `pip install .` gives an importable gm with its data; the same dependencies
as requirements.txt."""

import os
import re
import shutil
import subprocess
import sys
import tomllib

from tests.conftest import ROOT


def _names(lines):
  return {re.split(r"[<>=\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
          for line in lines if line.strip() and not line.strip().startswith("#")}


def test_pyproject_declares_the_requirements():
  meta = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
  runtime, test = _names(meta["dependencies"]), _names(meta["optional-dependencies"]["test"])
  required = _names(open(os.path.join(ROOT, "requirements.txt")).read().splitlines())
  assert runtime | test == required and not runtime & test
  assert "pytest" in test and "jax" in runtime


def test_pip_install_gives_an_importable_package_with_its_data(tmp_path):
  # A copy of what the package is built from (setuptools writes build/ into the source tree).
  src = tmp_path / "src"
  shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
      ".venv", ".git", "runs", "__pycache__", "build", "*.egg-info", "docs", "benchmarks"))
  site = tmp_path / "site"
  out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site), str(src)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert (site / "gm" / "metrics" / "judge_mnist.npz").exists()
  assert (site / "gm" / "commands" / "gan.py").exists() and not (site / "tests").exists()
  # From another directory, with only the installed copy on the path.
  env = dict(os.environ, PYTHONPATH=str(site))
  probe = subprocess.run([sys.executable, "-c", "import gm, gm.api; print(gm.__file__); "
                          "print(gm.load_run.__module__)"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
  assert probe.returncode == 0, probe.stderr[-2000:]
  path, module = probe.stdout.split()
  assert path.startswith(str(site)) and module == "gm.api"
