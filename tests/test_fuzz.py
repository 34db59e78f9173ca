"""Property-based fuzzing of the config overrides train.py takes: every drawn override of every
config is either accepted by train.py's own validation (`gm.train.loop.validate`, everything it
checks before writing a run directory; nothing is trained) or refused with a one-line
`UserError`, never another exception.

Examples per run: GM_FUZZ_EXAMPLES (default 60, about a minute here); a long local run:
  GM_FUZZ_EXAMPLES=10000 python -m pytest -q tests/test_fuzz.py
Hypothesis keeps its example database out of the repo (`database=None`): each run draws anew
from its seed; cases that found bugs are pinned in `PINNED` below.
"""

import contextlib
import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from gm import config_utils
from gm.errors import UserError
from tests.conftest import ROOT

CONFIGS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                 if f.endswith(".py") and f not in ("__init__.py", "common.py"))
EXAMPLES = int(os.environ.get("GM_FUZZ_EXAMPLES", "60"))

# Values as a user types them after --config.<key>= (Python literals where they parse).
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "3", "33", "48", "1e12", "-1e12", "nan", "inf", "-inf",
                     "''", "'abc'", "True", "False", "None", "()", "(1, 2)", "[]", "0.5", "-0.5",
                     "1e-300", "'nan'", "'joint'", "'uniform'"]),
    st.integers(-10, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.text(alphabet="abc_-.,:/ 0", max_size=6).map(repr),
)

# Reproductions of the errors that were crashes before the checks existed (spec, key, value).
PINNED = [
    ("cake_fast", "data.image_size", "33"),
    ("dcgan_cake", "data.image_size", "48"),
    ("dcgan_mnist", "model.d", "{'dropout': 0.3}"),  # A field the architecture lacks.
    ("cake_grow", "model.g.size", "48"),
    ("cake_fast", "model.d.norm", "'layer'"),
    ("cake_fast", "data.image_size", "1e12"),  # Found by a 10,000-example run.
    ("cake_fast", "data.holdout_seed", "-1"),
    ("cake_fast", "data.holdout", "nan"),
    ("cake_fast", "data.holdout", "inf"),
    ("cvae_mnist", "model.decoder_strides", "None"),
    ("cake_fast", "data.resize", "'abc'"),
    ("cvae_mnist", "data.placements", "1e12"),
    ("cvae_mnist", "model.decoder_strides", "(1, 1)"),  # Traced step: 7x7 vs 42x42 images.
    ("cvae_mnist", "data.canvas_seed", "-1"),
]


@pytest.fixture(scope="module", autouse=True)
def repo_untouched():
  """Validation writes nothing into the repository (a drawn relative path once did)."""
  def entries():  # Other test processes may byte-compile train.py meanwhile.
    return {f for f in os.listdir(ROOT) if f != "__pycache__" and not f.startswith(".")}
  before = entries()
  yield
  assert entries() == before


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  d = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(0)
  for i in range(80):
    Image.fromarray(rng.integers(0, 256, (72, 72, 3), dtype=np.uint8)).save(d / f"{i}.png")
  return str(d)


def _keys(name):
  return sorted(config_utils.flatten(config_utils.to_dict(
      config_utils.load_file(os.path.join(ROOT, "configs", f"{name}.py:smoke")))))


KEYS = {name: _keys(name) for name in CONFIGS}


def _outcome(name, key, text, photos, cache):
  """None if train.py's validation accepts the override, else its one-line UserError message;
  any other exception propagates (and fails the test)."""
  from gm.train import loop  # pylint: disable=g-import-not-at-top
  spec = os.path.join(ROOT, "configs", f"{name}.py:smoke")
  base = []
  if "data.cache_dir" in KEYS[name]:  # Photo-folder configs.
    base = [f"data.dir={photos}", f"data.cache_dir={cache}"]
  try:
    # A drawn path (say data.cache_dir='c') is relative: it must land in a temp dir, not the repo.
    with contextlib.chdir(os.path.dirname(cache)):
      config = config_utils.load_file(spec, base + [f"{key}={text}"])
      config_utils.check_values(config)
      config_utils.check_kinds(config, config_utils.load_file(spec, base))
      loop.validate(config)
  except UserError as e:
    msg = str(e)
    assert msg and "\n" not in msg and "unexpected" not in msg, (name, key, text, msg)
    return msg
  finally:
    jax.clear_caches()  # Every example traces a new family: a long run must not grow.
  return None


@pytest.mark.parametrize("name,key,text", PINNED)
def test_pinned_cases_are_one_line_errors(name, key, text, photos, tmp_path):
  assert _outcome(name, key, text, photos, str(tmp_path / "cache")) is not None


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_config_overrides_are_accepted_or_one_line_errors(data, photos, tmp_path_factory):
  name = data.draw(st.sampled_from(CONFIGS), label="config")
  key = data.draw(st.sampled_from(KEYS[name]), label="key")
  text = data.draw(VALUES, label="value")
  _outcome(name, key, text, photos, str(tmp_path_factory.getbasetemp() / "fuzz_cache"))
