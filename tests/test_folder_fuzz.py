"""Photo folders as users have them: every file is decoded or named in the one warning, the
loader never crashes and never writes into the folder, and EXIF orientation is honoured."""

import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

from gm.data import folder
from gm.errors import UserError


def _jpeg(img: Image.Image, **kw) -> bytes:
  buf = io.BytesIO()
  img.save(buf, "JPEG", quality=95, **kw)
  return buf.getvalue()


def _snapshot(d):
  return sorted((os.path.relpath(os.path.join(r, f), d), os.lstat(os.path.join(r, f)).st_mtime_ns)
                for r, _, fs in os.walk(d) for f in fs)


def test_a_folder_of_awkward_files_decodes_what_it_can_and_names_the_rest(tmp_path, caplog):
  d = tmp_path / "photos"
  (d / "sub dir").mkdir(parents=True)
  rng = np.random.default_rng(0)
  photo = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
  good = {
      "plain.jpg": _jpeg(photo),
      "gâteau aux carottes.jpg": _jpeg(photo),                      # spaces, non-ASCII
      "sub dir/one pixel.png": None,                                # 1x1
      "huge.jpg": _jpeg(Image.new("RGB", (6000, 4000), (200, 120, 40))),
      "cmyk.jpg": _jpeg(photo.convert("CMYK")),
      "palette.png": None,
      "sixteen.png": None,                                          # 16-bit greyscale
      "rotated.jpg": None,                                          # EXIF orientation 6
  }
  bad = {"random.jpg": rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
         "truncated.jpg": _jpeg(photo)[:400], "empty.png": b""}
  for name, data in {**good, **bad}.items():
    if data is not None:
      (d / name).write_bytes(data)
  Image.new("RGB", (1, 1), (10, 200, 30)).save(d / "sub dir" / "one pixel.png")
  photo.convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.png")
  ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))  # dark left, bright right
  Image.fromarray(ramp).save(d / "sixteen.png")
  assert Image.open(d / "sixteen.png").mode.startswith("I")
  # Stored with its left half red; EXIF 6 says "rotate 90 degrees clockwise to view", so the
  # viewer sees the red half on top.
  stored = np.zeros((32, 32, 3), np.uint8)
  stored[:, :16, 0] = 255
  exif = Image.Exif()
  exif[0x0112] = 6
  (d / "rotated.jpg").write_bytes(_jpeg(Image.fromarray(stored), exif=exif))
  os.symlink("loop_b.jpg", d / "loop_a.jpg")                   # a symlink loop
  os.symlink("loop_a.jpg", d / "loop_b.jpg")
  os.symlink("missing.jpg", d / "dangling.jpg")
  before = _snapshot(d)
  with caplog.at_level(logging.WARNING, logger="gm"):
    out = folder.load_folder(str(d), 32, "crop", str(tmp_path / "cache"))
  assert _snapshot(d) == before  # Nothing written into (or touched in) the folder.
  assert sorted(out["files"]) == sorted(good)
  assert sorted(out["skipped"]) == sorted([*bad, "loop_a.jpg", "loop_b.jpg", "dangling.jpg"])
  (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
  assert "skipped 6 unreadable image file(s) of 14" in warning and "\n" not in warning
  images = dict(zip(out["files"], out["image"]))
  assert all(im.shape == (32, 32, 3) and im.dtype == np.uint8 for im in images.values())
  top, bottom = images["rotated.jpg"][:12].astype(int), images["rotated.jpg"][20:].astype(int)
  assert top[..., 0].mean() > 200 and bottom[..., 0].mean() < 50  # upright as viewed
  sixteen = images["sixteen.png"][..., 0].astype(int)
  assert sixteen[:, 0].mean() < 20 and sixteen[:, -1].mean() > 235  # scaled, not clipped
  assert 100 < sixteen[:, 16].mean() < 160
  # A second load comes from the cache, with the same arrays.
  again = folder.load_folder(str(d), 32, "crop", str(tmp_path / "cache"))
  assert again["cached"] and np.array_equal(again["image"], out["image"])


def test_a_folder_of_nothing_readable_is_one_line(tmp_path):
  (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
  os.symlink("a_loop.png", tmp_path / "a_loop.png")
  with pytest.raises(UserError, match=r"none of the 2 image files under .* could be read"):
    folder.load_folder(str(tmp_path), 32, "crop", str(tmp_path / "cache"))
