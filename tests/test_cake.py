"""Cake DCGAN: the image-folder loader, augmentation, the assignment's models, SWD, a CLI smoke run."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gm import data, families
from gm.data import augment as A
from gm.data import folder
from gm.errors import UserError
from gm.metrics import scores, swd as S
from gm.models import gan as M
from tests.conftest import ROOT, assert_trees_equal, load_config
from tests.resume_check import moved_means, straight_and_resumed


def _write_photos(d, n=12):
  """n RGB JPEGs of different sizes (some nested), plus the awkward cases."""
  rng = np.random.default_rng(0)
  os.makedirs(d / "nested" / "deeper", exist_ok=True)
  for i in range(n):
    h, w = int(rng.integers(40, 200)), int(rng.integers(40, 200))
    sub = d / "nested" if i % 3 == 0 else (d / "nested" / "deeper" if i % 3 == 1 else d)
    ext = [".jpg", ".JPEG", ".png", ".webp"][i % 4]
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sub / f"p{i}{ext}")
  Image.fromarray(np.full((30, 30), 77, np.uint8), "L").save(d / "gray.png")
  Image.fromarray(np.zeros((30, 30), np.uint8), "L").convert("P").save(d / "palette.png")
  rgba = np.zeros((30, 30, 4), np.uint8)
  rgba[..., 0] = 255  # red, but fully transparent: becomes white
  Image.fromarray(rgba, "RGBA").save(d / "clear.png")
  (d / "broken.jpg").write_bytes(b"not a jpeg at all")
  (d / "notes.txt").write_text("ignored")
  return n + 3  # readable images


def _snapshot(d):
  return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*"))


def test_folder_loader_converts_skips_caches_and_never_writes_the_folder(tmp_path, caplog):
  photos, cache = tmp_path / "photos", tmp_path / "cache"
  photos.mkdir()
  readable = _write_photos(photos)
  before = _snapshot(photos)
  out = folder.load_folder(str(photos), 64, "crop", str(cache))
  assert out["image"].shape == (readable, 64, 64, 3) and out["image"].dtype == np.uint8
  assert out["skipped"] == ["broken.jpg"] and not out["cached"]
  assert "skipped 1 unreadable image file(s)" in caplog.text and "broken.jpg" in caplog.text
  files = out["files"]
  assert (out["image"][files.index("gray.png")] == 77).all()  # grayscale -> RGB
  assert (out["image"][files.index("clear.png")] == 255).all()  # transparent -> white
  again = folder.load_folder(str(photos), 64, "crop", str(cache))
  assert again["cached"] and np.array_equal(again["image"], out["image"])
  assert _snapshot(photos) == before  # Nothing in the folder was written.
  Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(photos / "new.jpg")
  changed = folder.load_folder(str(photos), 64, "crop", str(cache))
  assert not changed["cached"] and len(changed["image"]) == readable + 1


def test_crop_and_pad_geometry():
  img = np.zeros((50, 100, 3), np.uint8)  # wide: left half red, right half blue
  img[:, :50, 0] = 255
  img[:, 50:, 2] = 255
  crop = np.asarray(folder.resize(Image.fromarray(img), 20, "crop"))
  assert crop.shape == (20, 20, 3)
  assert crop[:, :8, 0].min() > 200 and crop[:, 12:, 2].min() > 200  # the centre 50x50 square
  pad = np.asarray(folder.resize(Image.fromarray(img), 20, "pad"))
  assert (pad[:4] == 0).all() and (pad[-4:] == 0).all()  # black bars above and below
  assert pad[10, 2, 0] > 200 and pad[10, 17, 2] > 200


def test_folder_errors_say_what_to_do(tmp_path):
  cfg = load_config("dcgan_cake", "smoke").data
  for directory, message in (("", "data.dir is empty"), (str(tmp_path / "nope"), "does not exist"),
                             (str(tmp_path), "no images")):
    cfg.dir = directory
    with pytest.raises(UserError, match=message):
      data.load(cfg)
  (tmp_path / "a.jpg").write_bytes(b"garbage")
  cfg.dir, cfg.cache_dir = str(tmp_path), str(tmp_path / "cache")
  with pytest.raises(UserError, match="could be read"):
    data.load(cfg)


def test_food101_source_keeps_only_carrot_cake(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  cfg = load_config("dcgan_cake", "smoke").data
  cfg.source = "tfds"
  with tfds.testing.mock_data(num_examples=300):
    src = tfds.data_source("food101", split="train")
    expected = sum(int(src[i]["label"]) == 14 for i in range(len(src)))
    if expected == 0:
      pytest.skip("mock data drew no carrot_cake example")
    ds = data.load(cfg)
  assert ds.train["image"].shape[1:] == (64, 64, 3) and len(ds.train["image"]) == min(expected, 64)


def test_flip_rotation_and_zoom_warps():
  x = np.random.default_rng(0).uniform(size=(2, 9, 9, 3)).astype(np.float32)
  np.testing.assert_array_equal(A._affine_warp(jnp.asarray(x[0]), jnp.eye(2)), x[0])
  quarter = jnp.array([[0.0, -1.0], [1.0, 0.0]])  # +90 degrees
  np.testing.assert_allclose(A._affine_warp(jnp.asarray(x[0]), quarter), np.rot90(x[0], -1),
                             atol=1e-5)
  flipped = A.augment(jnp.asarray(x), jax.random.PRNGKey(3), flip=True)
  for a, f in zip(x, np.asarray(flipped)):
    assert np.array_equal(f, a) or np.array_equal(f, a[:, ::-1])
  assert np.array_equal(A.augment(jnp.asarray(x), jax.random.PRNGKey(0), flip=False), x)
  zoomed = A.augment(jnp.asarray(x), jax.random.PRNGKey(1), flip=False, zoom=0.2, rotate=15.0)
  assert zoomed.shape == x.shape and not np.allclose(zoomed, x)


def test_diff_augment_translation_cutout_and_gradients():
  x = jnp.ones((4, 16, 16, 3))
  cut = np.asarray(A.diff_augment(x, jax.random.PRNGKey(0), ("cutout",)))
  zeros = (cut[..., 0] == 0).sum((1, 2))
  assert (zeros <= 64).all() and (zeros >= 16).all()  # an 8x8 square, clipped at the border
  moved = np.asarray(A.diff_augment(x, jax.random.PRNGKey(1), ("translation",)))
  assert ((moved == 0) | (moved == 1)).all() and (moved.sum((1, 2, 3)) >= 14 * 14 * 3).all()
  assert (moved == 0).any()  # Something moved (test_augment checks the shifts exactly).
  g = jax.grad(lambda x: A.diff_augment(x, jax.random.PRNGKey(2),
                                        ("color", "translation", "cutout")).sum())(x)
  assert np.isfinite(g).all() and np.abs(g).sum() > 0
  with pytest.raises(ValueError, match="valid: color"):
    A.parse_policy("color,blur")


def test_cake_parameter_counts_from_the_layer_formulas():
  conv = lambda k, i, o: k * k * i * o + o
  bn = lambda c: 4 * c  # scale, bias, mean, var
  d = (conv(4, 3, 64) + bn(64) + conv(4, 64, 128) + bn(128) + conv(4, 128, 128) + bn(128)
       + 8 * 8 * 128 + 1)
  dense = 128 * 8 * 8 * 128 + 8 * 8 * 128
  g_t = dense + conv(4, 128, 128) + conv(4, 128, 256) + conv(4, 256, 512) + conv(5, 512, 3)
  g_u = (dense + conv(3, 128, 64) + bn(64) + conv(3, 64, 64) + bn(64) + conv(3, 64, 128)
         + bn(128) + conv(3, 128, 128) + bn(128) + conv(3, 128, 256) + bn(256)
         + conv(3, 256, 256) + bn(256) + conv(5, 256, 3))
  key = jax.random.PRNGKey(0)
  x, z = jnp.zeros((2, 64, 64, 3)), jnp.zeros((2, 128))
  assert M.count_params(M.DISCRIMINATORS.get("dcgan_cake")().init(key, x, train=False)) == d
  assert M.count_params(M.GENERATORS.get("dcgan_cake")().init(key, z, train=False)) == g_t
  assert M.count_params(M.GENERATORS.get("dcgan_cake_upsample")().init(key, z,
                                                                       train=False)) == g_u
  assert (d, g_t, g_u) == (406_081, 3_979_651, 2_296_963)  # params + batch-norm statistics


def test_sliced_wasserstein():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(300, 1)), rng.normal(1.0, 2.0, size=(300, 1))
  exact = np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0])).mean()  # 1-D: W1 of sorted samples
  assert S.sliced_wasserstein(a, b, directions=3) == pytest.approx(exact, rel=1e-9)
  imgs = rng.uniform(size=(64, 32, 32, 3)) ** 2  # i.i.d. noise images
  ramps = (np.linspace(0, 1, 32)[None, :, None, None] * rng.uniform(size=(64, 1, 1, 3))
           + 0.05 * rng.normal(size=(64, 32, 32, 3)))  # smooth colour ramps
  same = S.swd(imgs[:32], imgs[32:])
  other = S.swd(imgs[:32], ramps[32:])
  assert set(same) == {"swd_32", "swd_16", "swd"} and same["swd"] < 0.35 * other["swd"]
  assert S.swd(ramps[:32], ramps[32:])["swd"] < 0.35 * other["swd"]
  levels = S.laplacian_pyramid(imgs[:2])
  assert [lv.shape[1] for lv in levels] == [32, 16]


def test_d_batch_norm_mode_in_the_generator_step():
  """'running' (Keras' frozen D) leaves D's statistics out of the G step's forward pass."""
  c = load_config("dcgan_cake", "smoke")
  outs = {}
  for mode in ("batch", "running"):
    c.train.d_bn_in_g_step = mode
    fam = families.get(c)
    fam.total_steps = 10
    batch = {"image": np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
             "label": np.zeros(8, np.int32)}
    state = fam.init(jax.random.PRNGKey(0), batch)
    new, m = jax.jit(fam.g_step)(state, fam.inputs(batch), None, jax.random.PRNGKey(1))
    assert jax.tree.all(jax.tree.map(np.array_equal, new.d, state.d))
    outs[mode] = float(m["g_loss"])
  assert outs["batch"] != outs["running"]


def test_cake_smoke_trains_from_the_cli_and_draws_its_plots(tmp_path):
  photos = tmp_path / "photos"
  photos.mkdir()
  rng = np.random.default_rng(1)
  for i in range(24):
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
  wd = tmp_path / "run"
  cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--config",
         os.path.join(ROOT, "configs/dcgan_cake.py:smoke"), "--workdir", str(wd),
         f"--config.data.dir={photos}", f"--config.data.cache_dir={tmp_path / 'cache'}",
         "--config.train.progress=False", "--config.train.tensorboard=False"]
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-2000:]
  records = [json.loads(line) for line in open(wd / "metrics.jsonl")]
  assert [r["epoch"] for r in records] == [1, 2] and all("quality/swd" in r for r in records)
  assert sorted(os.listdir(wd / "samples")) == ["step_00000000.png", "step_00000003.png",
                                                "step_00000006.png"]
  ev = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "all", "--workdir",
                       str(wd)], capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert ev.returncode == 0, ev.stderr[-2000:]
  assert sorted(os.listdir(wd / "eval")) == sorted([
      "samples_step6.png", "loss_curves.png", "evolution.gif", "gan_score_step6.json",
      "data_grid.png", "spectrum_step6.png", "spectrum_step6.json"])
  # The checkerboard test: samples' and photos' spectra at the upsampling grid's frequencies.
  spec = json.load(open(wd / "eval" / "spectrum_step6.json"))
  assert spec["num"] == 24 and set(spec["peaks"]) == {"training photos", "samples"}
  assert all(set(p) == {"period_2", "period_4", "period_8"} for p in spec["peaks"].values())
  assert all(len(r) == 33 for r in spec["radial"].values())  # |k| = 0 .. 32 at 64 px
  assert not (wd / "tensorboard").exists()  # train.tensorboard=False: no event files.
  # Scores against another folder, decoded at the run's 64x64 crop, beside the training photos'.
  ref = tmp_path / "other photos"
  ref.mkdir()
  for i in range(12):
    Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(ref / f"{i}.png")
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  run(parser().parse_args(["gan-score", "--workdir", str(wd), "--reference", str(ref)]))
  result = json.load(open(wd / "eval" / "gan_score_vs_other_photos_step6.json"))
  assert result["reference"] == str(ref) and result["num_samples"] == 12
  keys = {"swd_64", "swd_32", "swd_16", "swd", "kid_randcnn_x1e3", "kid_randcnn_x1e3_std",
          "precision_randcnn", "recall_randcnn", "density_randcnn", "coverage_randcnn"}
  assert set(result["real_train_vs_reference"]) == keys
  # The floor: as many training photos as samples are drawn (at least FOLDER_MIN_SAMPLES,
  # fewer when the folder holds fewer) vs the reference's 12 photos.
  as_float = lambda d, n: np.asarray(data.to_float(folder.load_folder(
      str(d), 64, "crop", str(tmp_path / "cache"))["image"][:n]))
  assert result["real_train_vs_reference"] == pytest.approx(scores.image_set_scores(
      as_float(photos, max(12, scores.FOLDER_MIN_SAMPLES)), as_float(ref, 12)))
  assert [r["step"] for r in result["scores"]] == [6]
  assert set(result["scores"][0]) == keys | {"step"}
  with pytest.raises(UserError, match="no such folder"):
    run(parser().parse_args(["gan-score", "--workdir", str(wd), "--reference", str(ref / "x")]))
  # Too few photos for one batch: a one-line error, and the run directory is untouched.
  small = subprocess.run(cmd[:-2] + ["--config.data.num_train=5"] + cmd[-2:],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert small.returncode == 2 and "fewer than one batch of 8" in small.stderr


def test_augment_grid_before_training_from_a_config(tmp_path):
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  photos = tmp_path / "photos"
  photos.mkdir()
  for i in range(3):
    Image.fromarray(np.full((70, 70, 3), 40 * i, np.uint8)).save(photos / f"{i}.png")
  run(parser().parse_args(["augment-grid", "--config", os.path.join(ROOT, "configs/dcgan_cake.py"),
                           "--set", f"data.dir={photos}", "--set",
                           f"data.cache_dir={tmp_path / 'c'}", "--out", str(tmp_path / "out"),
                           "--images", "3", "--draws", "4"]))
  grid = np.asarray(Image.open(tmp_path / "out" / "augment_grid.png"))
  assert grid.shape[0] > 3 * 64 and grid.shape[1] > 5 * 64


def test_cake_smoke_resumes_bit_exactly(tmp_path):
  """The cake smoke's second epoch, resumed from the checkpoint of the first in a fresh build,
  ends bit-identical to the straight run: batch norm in D (whose running statistics the
  generator step reads), flip/zoom/rotate, dropout and label noise all resume
  (`tests/resume_check.py`). 24 photos, as the CLI smoke above: the same compiled step."""
  photos = tmp_path / "photos"
  photos.mkdir()
  rng = np.random.default_rng(0)
  for i in range(24):
    Image.fromarray(rng.integers(0, 256, (72, 88, 3), dtype=np.uint8)).save(photos / f"{i}.png")
  c = load_config("dcgan_cake", "smoke")
  assert c.train.d_bn_in_g_step == "running" and c.augment.flip and c.augment.zoom
  assert c.augment.rotate and c.loss.label_noise
  c.data.dir, c.data.cache_dir = str(photos), str(tmp_path / "cache")
  straight, resumed = straight_and_resumed(c, data.load(c.data), str(tmp_path / "run"))
  assert int(straight.step) == 6
  assert_trees_equal(straight, resumed)
  assert moved_means(straight.model.d.batch_stats)  # D's batch-norm statistics are in play.


def _cake_section():
  """scripts/cake_section.py as a module."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "cake_section", os.path.join(ROOT, "scripts", "cake_section.py"))
  section = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(section)
  return section


def test_cake_section_swd_table_reads_the_last_checkpoint_within_each_mark():
  section = _cake_section()
  curves = {"grow": {"minutes": [4.0, 9.5, 12.0, 61.0], "swd_ema": [90.0, 50.0, 40.0, 30.0],
                     "swd_raw": [95.0, 55.0, 45.0, 33.0], "floor": 20.0,
                     "floor_chunks": [18.0, 22.5], "num_heldout": 112, "image_size": 64}}
  rows = section.markdown_curve_table(curves, (10, 60)).splitlines()
  assert rows[0] == "| run | <= 10 min | <= 60 min | last (minutes) | last / floor |"
  assert rows[2] == "| grow (EMA) | 50.0 | 40.0 | 30.0 (61.0) | 1.50x |"
  assert rows[3] == "| grow (raw weights) | 55.0 | 45.0 | 33.0 (61.0) | 1.65x |"
  assert rows[4].startswith("| floor (64 px, 112") and "20.0 (chunks 18.0 to 22.5)" in rows[4]


def test_cake_section_split_table_window_mean_and_retiming():
  section = _cake_section()
  floor = {"floor_swd": 20.0, "floor_swd_min": 18.0, "floor_swd_max": 22.0,
           "floor_kid_z_x1e3": -3.0, "floor_kid_min": -9.0, "floor_kid_max": 4.0}
  ratios = [3.0, 2.0, 1.5, 1.4, 1.3, 1.2, 1.1]  # At epochs 100, 200, ..., 700.
  pts = [{"epoch": 100 * (i + 1), "ratio": r, "ratio_se": 0.05, "kid_z_x1e3": 10.0 * r,
          "kid_min": 1.0, "kid_max": 50.0, **floor} for i, r in enumerate(ratios)]
  curves = {"fast": {"split": pts, "split_floor": {"swd": [18.0, 20.0, 22.0]}}}
  rows = section.markdown_split_table(curves, (250, 650), by="epoch").splitlines()
  assert rows[0].startswith("| run | <= 250 epochs | <= 650 epochs | last (epoch) |")
  window = np.mean(ratios[1:6])  # The last 5 scored checkpoints within 650 epochs.
  assert rows[2] == (f"| fast (EMA) | 2.00x ± 0.05 (2.50x) | 1.20x ± 0.05 ({window:.2f}x) | "
                     "1.10x ± 0.05 (700) | 11 (1 to 50) |")
  assert rows[3].startswith("| floor (training photos, half against half, 3 splits)")
  assert "SWD 20.0 (18.0 to 22.0) = 1x | -3 (-9 to 4) |" in rows[3]
  curves = {"fast": {"epoch": [100, 300], "minutes": [9.0, 9.5],  # Logged while sharing the CPU.
                     "split": [{"epoch": 300, "minutes": 9.5}]}}
  section.retime(curves, {"fast": 1.2})  # 1.2 s per epoch measured alone.
  assert curves["fast"]["minutes"] == [2.0, 6.0] and curves["fast"]["split"][0]["minutes"] == 6.0
  with pytest.raises(SystemExit, match="no scored run 'slow'"):
    section.retime(curves, {"slow": 1.0})
  assert section.minutes_label(curves).startswith("minutes: epoch x each run's cost per epoch")
  curves["b64"] = {"epoch": [100], "minutes": [3.0]}  # Not re-timed: its wall-clock minutes.
  assert section.minutes_label(curves).startswith(
      "minutes: wall-clock from process start, over resumes; fast: epoch x cost per epoch alone")
  assert section.minutes_label({"b64": curves["b64"]}).startswith("wall-clock minutes")
  assert section.minutes_label({"b64": curves["b64"]}, "one core each of a 2-core CPU") == (
      "wall-clock minutes from process start, over resumes (one core each of a 2-core CPU)")


def test_cake_section_reuses_the_stored_scores_of_the_same_checkpoints_only():
  section = _cake_section()
  # Split-half checkpoints counted from the first: a resumed run keeps the earlier choices
  # (and a finished run with an odd count the choices of the count from its last).
  assert section.split_steps([10, 20, 30, 40, 50], 2) == [10, 30, 50]
  assert section.split_steps([10, 20, 30, 40], 2) == [10, 30, 40]
  assert section.split_steps([10], 3) == [10]
  earlier = section.split_steps([10, 20, 30, 40], 2)
  assert set(earlier[:-1]) <= set(section.split_steps(list(range(10, 80, 10)), 2))
  draws = lambda v: [v + d for d in range(section.DRAWS)]
  split_floor = {"swd": [16.0, 17.0], "kid_z_x1e3": [-1.0, 2.0]}
  logged = {10: 62.5, 20: 130.0}  # Step -> its metrics record's time/process_s.
  prev = {"workdir": "runs/a", "step": [10, 20], "process_s": [62.5, 130.0],
          "swd_ema_draws": [draws(1.0), draws(4.0)], "swd_raw_draws": [draws(7.0), draws(9.0)],
          "floor_chunks": [28.0, 30.0], "split_floor": split_floor, "seed": 0,
          "split": [{"step": 20, "ratio": 2.0}]}
  got = section.stored_scores(prev, "runs/a/", [28.0, 30.0], split_floor, logged)
  assert got == {10: {"swd_ema_draws": draws(1.0), "swd_raw_draws": draws(7.0)},
                 20: {"swd_ema_draws": draws(4.0), "swd_raw_draws": draws(9.0),
                      "split": {"step": 20, "ratio": 2.0}}}
  # Another run directory, other held-out photos, another seed: nothing is reused.
  assert section.stored_scores(prev, "runs/b", [28.0, 30.0], split_floor, logged) == {}
  assert section.stored_scores(prev, "runs/a", [28.0, 30.5], split_floor, logged) == {}
  assert section.stored_scores(prev, "runs/a", [28.0, 30.0], split_floor, logged, seed=1) == {}
  assert section.stored_scores(None, "runs/a", [28.0, 30.0]) == {}
  # A step whose metrics record changed (the directory trained anew) is scored again.
  assert set(section.stored_scores(prev, "runs/a", [28.0, 30.0], split_floor,
                                   {10: 62.5, 20: 131.0})) == {10}
  # Files written before "process_s": their minutes were process_s / 60, unless re-timed.
  legacy = {k: v for k, v in prev.items() if k != "process_s"}
  legacy["minutes"] = [62.5 / 60, 130.0 / 60]
  assert set(section.stored_scores(legacy, "runs/a", [28.0, 30.0], split_floor, logged)) == {10, 20}
  assert section.stored_scores({**legacy, "epoch_seconds": 1.0}, "runs/a", [28.0, 30.0],
                               split_floor, logged) == {}
  # Other halvings: the held-out SWDs are reused, the split-half scores are not.
  other = {"swd": [16.0, 18.0], "kid_z_x1e3": [-1.0, 2.0]}
  assert "split" not in section.stored_scores(prev, "runs/a", [28.0, 30.0], other, logged)[20]
  prev["swd_ema_draws"][0] = [1.0]  # Stored with another number of draws.
  assert 10 not in section.stored_scores(prev, "runs/a", [28.0, 30.0], split_floor, logged)


class _FakeRun:
  """A scored run without training: `RunContext`'s surface that cake_section's scoring reads
  (16x16 photos, checkpoints 0 / 10 / 20 / 30 whose samples depend on the step), recording
  which checkpoints are restored, i.e. scored."""
  restored = []
  rng = np.random.default_rng(0)
  photos = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)

  def __init__(self, workdir):
    import ml_collections  # pylint: disable=g-import-not-at-top
    from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
    self.config = ml_collections.ConfigDict({"data": {"holdout": 0.25}, "train": {"ema_decay": 0}})
    self.dataset = SimpleNamespace(train={"image": self.photos[:24]},
                                   test={"image": self.photos[24:]})
    sample = lambda step, key, n: jax.random.uniform(key, (n, 16, 16, 3)) * (0.5 + step / 60)
    self.family = SimpleNamespace(sample=sample)

  def steps(self):
    return [0, 10, 20, 30]

  def restore(self, step):
    from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
    self.restored.append(step)
    return SimpleNamespace(model=step)


def test_cake_section_scores_only_checkpoints_it_has_not_scored(tmp_path, monkeypatch, capsys):
  from gm.commands import base, generic  # pylint: disable=g-import-not-at-top
  section = _cake_section()
  logs = {"run": [{"step": s, "epoch": s // 10, "time/process_s": s + 2.0,
                   "time/session_s": float(s)} for s in (10, 20, 30)]}
  monkeypatch.setattr(base, "RunContext", _FakeRun)
  monkeypatch.setattr(generic, "read_metrics", lambda workdir: logs["run"])

  (tmp_path / "a").mkdir()

  def main(*flags):
    _FakeRun.restored.clear()
    monkeypatch.setattr(sys, "argv", [
        "cake_section.py", "--runs", f"a={tmp_path / 'a'}", "--out", str(tmp_path), "--split", "2",
        "--split_stride", "2", "--skip", "figures,inversion,copying", *flags])
    section.main()
    return json.load(open(tmp_path / "cake_results.json"))["curves"]["a"]

  first = main()
  assert _FakeRun.restored == [10, 20, 30] and [p["step"] for p in first["split"]] == [10, 30]
  assert main() == first and _FakeRun.restored == []  # Nothing new: nothing scored again.
  assert "3 of 3 checkpoints' held-out SWDs" in capsys.readouterr().out
  assert main("--fresh") == first and _FakeRun.restored == [10, 20, 30]
  logs["run"][1].update({"time/process_s": 21.5, "time/session_s": 19.5})  # Trained anew.
  again = main()
  assert _FakeRun.restored == [20] and again["swd_ema_draws"] == first["swd_ema_draws"]
  logs["run"].append({"step": 40, "epoch": 4, "time/process_s": 5.0, "time/session_s": 3.0})
  monkeypatch.setattr(_FakeRun, "steps", lambda self: [0, 10, 20, 30, 40])  # Resumed.
  resumed = main()
  assert _FakeRun.restored == [40] and [p["step"] for p in resumed["split"]] == [10, 30, 40]
  assert resumed["minutes"][-1] == pytest.approx((32.0 + 5.0) / 60)  # Over the two processes.
