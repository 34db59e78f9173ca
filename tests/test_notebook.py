"""notebooks/explore_a_run.ipynb runs top to bottom on a smoke run (so it cannot rot)."""

import os

import nbclient
import nbformat

from tests.conftest import ROOT


def test_the_example_notebook_runs_on_a_smoke_run(tmp_path, monkeypatch):
  path = os.path.join(ROOT, "notebooks", "explore_a_run.ipynb")
  nb = nbformat.read(path, as_version=4)
  assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed clean
  monkeypatch.setenv("GM_REPO", ROOT)
  monkeypatch.setenv("PYTHONPATH", ROOT)  # What `pip install -e .` gives a user's kernel.
  monkeypatch.setenv("GM_WORKDIR", str(tmp_path / "run"))
  monkeypatch.delenv("GM_RUN", raising=False)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
  assert "(32, 28, 28, 1) float32" in text and "train/d_loss" in text
  assert "chelsea" in text and "(8, 28, 28, 1)" in text
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # the four figures
  assert os.path.exists(tmp_path / "run" / "metrics.jsonl")
