"""The results tables and scripts/reproduce.py.

The README's results table and docs/results.md's tables are generated from docs/results.json
(`python scripts/reproduce.py --tables`); these tests check that they agree with it, that every row
has its runs (GAN rows at least 3 seeds unless costly), and that the script resumes: a complete run
directory is read, not re-run.
"""

import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from scripts import results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "reproduce.py")
STORE = results.load(os.path.join(REPO, "docs", "results.json"))


def test_tables_agree_with_the_results_file():
  for path, text in results.tables(STORE, REPO).items():
    with open(path) as f:
      assert f.read() == text, (
          f"{os.path.relpath(path, REPO)}'s results table differs from docs/results.json: "
          "python scripts/reproduce.py --tables")


@pytest.mark.parametrize("row", results.ROWS, ids=lambda r: r.name)
def test_every_row_has_its_runs(row):
  runs = STORE["rows"][row.name]["runs"]
  assert [r["seed"] for r in runs] == sorted({r["seed"] for r in runs})
  if row.seeded and not row.costly:
    assert len(runs) >= 3, f"{row.name}: a GAN row reports at least 3 seeds"
  for r in runs:
    assert row.show[0][0] in r["values"], f"{row.name} seed {r['seed']}: no {row.show[0][0]}"
    for key in ("hardware", "date", "code_version", "measured_by"):
      assert r.get(key), f"{row.name} seed {r['seed']}: no {key}"
    if r["measured_by"] == "scripts/reproduce.py":
      assert r["wall_s"] > 0 and r["workdir"].endswith(row.workdir(r["seed"]))
      assert r["commands"][0].startswith(f"python train.py --config {row.train[1]}")


@pytest.mark.parametrize("row", results.ROWS, ids=lambda r: r.name)
def test_row_configs_exist(row):
  assert row.train[0] == "--config"
  assert os.path.exists(os.path.join(REPO, row.train[1].split(":")[0])), row.train[1]


def test_headline_is_mean_and_sample_std_over_seeds():
  row = next(r for r in results.ROWS if r.name == "gan_mlp_mnist")
  fd = [59.04, 68.20, 52.99]
  runs = [{"seed": s, "values": {k: float(i + s) for i, (k, _) in enumerate(row.show)}}
          for s in range(3)]
  for r, v in zip(runs, fd):
    r["values"]["frechet"] = v
  cell = results.headline(row, runs)
  mean, std = statistics.mean(fd), statistics.stdev(fd)  # ddof = 1, computed independently
  assert cell.startswith(f"**{mean:.1f} ± {std:.1f}** / ")
  assert "3 seeds, mean ± std; range 53.0 to 68.2" in cell
  assert results.stats([4.0]) == (4.0, 0.0)
  one = results.headline(row, runs[:1])
  assert one.startswith("**59.0** / ") and "one run; each further seed costs" in one


def test_unknown_row_is_one_line_listing_the_valid_ones():
  proc = subprocess.run([sys.executable, SCRIPT, "--only", "gan_mlp_mnist,nope"],
                        capture_output=True, text=True, cwd=REPO)
  assert proc.returncode != 0
  (line,) = proc.stderr.strip().splitlines()
  assert "unknown row nope" in line and "gan_mlp_mnist" in line and "cake32" in line


def test_costly_rows_wait_to_be_named_and_judged_rows_read_the_shipped_judge():
  assert [r.name for r in results.select("gan_mlp_mnist")] == ["gan_mlp_mnist"]
  default = [r.name for r in results.select("")]
  assert "cake_fast" not in default and "dcgan_mnist" not in default
  assert "classifier_mnist" in default and "gan_mlp_mnist" in default
  judged = [r for r in results.ROWS if r.read in (results.read_gan, results.read_cvae)]
  assert judged and not any("--judge" in e for r in judged for e in r.evals)
  assert results.judge_accuracy("builtin")["accuracy"] > 99


def _complete_run(workdir, epochs, records, eval_files):
  os.makedirs(os.path.join(workdir, "eval"))
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump({"train": {"num_epochs": epochs}}, f)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")
  for name, obj in eval_files.items():
    with open(os.path.join(workdir, "eval", name), "w") as f:
      json.dump(obj, f)


def test_reproduce_reads_complete_runs_without_rerunning(tmp_path):
  root = tmp_path / "runs"
  rng = np.random.default_rng(0)
  score = {k: float(rng.uniform(1, 50)) for k in results.GAN_KEYS}
  floor = {k: float(rng.uniform(1, 5)) for k in results.GAN_KEYS}
  _complete_run(str(root / "gan_mlp_mnist"), 2,
                [{"step": 7, "epoch": 1}, {"step": 14, "epoch": 2}],
                {"gan_score_step14.json": {"scores": [{"step": 14, **score}],
                                           "real_train_vs_test": floor},
                 # What the script wrote it with; a score from another command would be redone.
                 "reproduce_commands.json": {
                     "gan_score_step14.json": f"eval.py gan-score --workdir {root}/gan_mlp_mnist"}})
  out = tmp_path / "results.json"
  proc = subprocess.run([sys.executable, SCRIPT, "--only", "gan_mlp_mnist", "--seeds", "1",
                         "--root", str(root), "--results", str(out), "--mnist", "/nonexistent"],
                        capture_output=True, text=True, cwd=REPO)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.count("skip (done)") == 2  # The GAN's training and its score.
  store = json.loads(out.read_text())
  (run,) = store["rows"]["gan_mlp_mnist"]["runs"]
  assert run["values"] == {**score, **{f"floor_{k}": v for k, v in floor.items()}}
  assert run["measured_by"].endswith("(run directory found trained)")
  assert run["commands"][-1] == f"python eval.py gan-score --workdir {root}/gan_mlp_mnist"
  assert list(store["rows"]) == ["gan_mlp_mnist"]


def test_judge_spread_table_is_per_judge_over_seeds_and_over_all_pairs():
  fd = [[59.0, 80.0, 70.0], [68.0, 90.0, 75.0], [53.0, 85.0, 66.0]]  # [GAN seed][judge seed]
  store = {"judge_spread": {
      "judges": [{"seed": j, "accuracy": 99.1 + j / 100,
                  "workdir": "builtin" if j == 0 else f"runs/judges/classifier_mnist_seed{j}"}
                 for j in range(3)],
      "hardware": "hw", "date": "d", "code_version": "v",
      "rows": {"gan_mlp_mnist": [{"seed": s, "frechet": fd[s], "floor_frechet": [13.75, 14.0, 12.5]}
                                 for s in range(3)]}}}
  table = results.render_judges(store)
  row = next(l for l in table.splitlines() if l.startswith("| MLP GAN"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  for j in range(3):
    col = [fd[s][j] for s in range(3)]
    assert cells[1 + j] == (f"{statistics.mean(col):.1f} ± {statistics.stdev(col):.1f} "
                            f"(floor {store['judge_spread']['rows']['gan_mlp_mnist'][0]['floor_frechet'][j]:.2f})")
  assert cells[4] == "range 53.0 to 90.0"
  sentence = results.judge_sentence(store)
  assert "9 seed-judge pairs range from 53.0 to 90.0" in sentence
  assert (f"{statistics.mean([59.0, 68.0, 53.0]):.1f} / {statistics.mean([80.0, 90.0, 85.0]):.1f}"
          in sentence) and "retrained with seed 1 and 2" in sentence
  assert table.startswith("| row | shipped judge, seed 0 (99.10 %) | judge seed 1 (99.11 %) |")


def test_an_eval_output_counts_as_done_only_when_this_script_wrote_it(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
  reproduce = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(reproduce)
  out = tmp_path / "eval" / "invert_step9.json"
  out.parent.mkdir()
  cmd = ["eval.py", "invert", "--workdir", "w", "--index", "test:0,test:1"]
  assert not reproduce.evaluated(str(out), cmd)
  out.write_text("{}")  # Written by an eval.py call of the user's, with other targets.
  assert not reproduce.evaluated(str(out), cmd)
  reproduce.stamp(str(out), cmd[:-1] + ["0"])
  assert not reproduce.evaluated(str(out), cmd)
  reproduce.stamp(str(out), cmd)
  assert reproduce.evaluated(str(out), cmd)


def test_photo_rows_time_a_resumed_run_over_every_process_up_to_the_scored_step(tmp_path):
  workdir = tmp_path / "run"
  (workdir / "eval").mkdir(parents=True)
  # Two processes: the second restarts process_s / session_s (no time/run_s: an older log).
  records = [{"step": 10, "epoch": 1, "time/process_s": 60.0, "time/session_s": 50.0},
             {"step": 20, "epoch": 2, "time/process_s": 120.0, "time/session_s": 110.0},
             {"step": 30, "epoch": 3, "time/process_s": 70.0, "time/session_s": 55.0},
             {"step": 40, "epoch": 4, "time/process_s": 130.0, "time/session_s": 115.0}]
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  for d, value in enumerate((30.0, 32.0, 34.0)):
    name = f"gan_score{f'_seed{d}' if d else ''}_step30.json"
    (workdir / "eval" / name).write_text(json.dumps(
        {"scores": [{"step": 30, "swd": value}], "real_train_vs_test": {"swd": 28.0}}))
  got = results.read_swd(str(workdir), 30)
  assert got["swd"] == pytest.approx(32.0) and got["floor_swd"] == 28.0
  assert got["minutes"] == pytest.approx((120.0 + 70.0) / 60)  # Not the last record's 115 s.
