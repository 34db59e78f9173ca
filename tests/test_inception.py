"""FID-Inception (gm/metrics/inception.py): layout, loader errors, features, FID, the GAN option.

No pretrained weights are available offline, so every test uses random weights
written in pytorch-fid's state-dict format (same keys, shapes and layouts).
The network runs at 75x75 (its smallest input) to keep the file fast on a CPU.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import load_config
from gm import families
from gm.errors import ConfigError, UserError
from gm.metrics import distances, prdc, random_cnn, sample_scores
from gm.metrics import inception as I
from gm.metrics import swd as S

SIZE = 75  # The network's smallest input; FID proper uses 299.
BATCH = 8


def _basic_convs():
  """(pytorch-fid module name, in, out, kh, kw) of every BasicConv2d, from torchvision's Inception3.

  Written by hand from torchvision/models/inception.py (InceptionA..E) and
  pytorch-fid's fid_inception_v3, independently of the Flax module.
  """
  convs = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3),
           ("Conv2d_2b_3x3", 32, 64, 3, 3), ("Conv2d_3b_1x1", 64, 80, 1, 1),
           ("Conv2d_4a_3x3", 80, 192, 3, 3)]
  for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
    convs += [(f"{name}.{n}", i, o, k, k) for n, i, o, k in (
        ("branch1x1", cin, 64, 1), ("branch5x5_1", cin, 48, 1), ("branch5x5_2", 48, 64, 5),
        ("branch3x3dbl_1", cin, 64, 1), ("branch3x3dbl_2", 64, 96, 3),
        ("branch3x3dbl_3", 96, 96, 3), ("branch_pool", cin, pool, 1))]
  convs += [("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
            ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3)]
  for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    convs += [(f"{name}.{n}", i, o, kh, kw) for n, i, o, kh, kw in (
        ("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1),
        ("branch7x7_2", c7, c7, 1, 7), ("branch7x7_3", c7, 192, 7, 1),
        ("branch7x7dbl_1", 768, c7, 1, 1), ("branch7x7dbl_2", c7, c7, 7, 1),
        ("branch7x7dbl_3", c7, c7, 1, 7), ("branch7x7dbl_4", c7, c7, 7, 1),
        ("branch7x7dbl_5", c7, 192, 1, 7), ("branch_pool", 768, 192, 1, 1))]
  convs += [("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
            ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
            ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3)]
  for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
    convs += [(f"{name}.{n}", i, o, kh, kw) for n, i, o, kh, kw in (
        ("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1),
        ("branch3x3_2a", 384, 384, 1, 3), ("branch3x3_2b", 384, 384, 3, 1),
        ("branch3x3dbl_1", cin, 448, 1, 1), ("branch3x3dbl_2", 448, 384, 3, 3),
        ("branch3x3dbl_3a", 384, 384, 1, 3), ("branch3x3dbl_3b", 384, 384, 3, 1),
        ("branch_pool", cin, 192, 1, 1))]
  return convs


def _random_state_dict(seed: int = 0):
  """pytorch-fid-format weights (OIHW convs, BN weight/bias/running stats) plus ignored extras."""
  rng = np.random.default_rng(seed)
  sd = {}
  for key, shape in I.torch_shapes().items():
    if key.endswith("conv.weight"):  # He init keeps activations O(1) through 94 conv-BN-ReLUs.
      fan_in = int(np.prod(shape[1:]))
      sd[key] = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    elif key.endswith("running_var"):
      sd[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif key.endswith("bn.weight"):
      sd[key] = rng.uniform(0.8, 1.2, shape).astype(np.float32)
    else:  # bn.bias, bn.running_mean
      sd[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
  sd["fc.weight"] = np.zeros((1008, 4), np.float32)  # Unused by pool3 (truncated here).
  sd["fc.bias"] = np.zeros((1008,), np.float32)
  sd["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(0, np.int64)
  return sd


@pytest.fixture(scope="module")
def state_dict():
  return _random_state_dict()


@pytest.fixture(scope="module")
def weights_npz(tmp_path_factory, state_dict):
  path = tmp_path_factory.mktemp("inception") / "pt_inception.npz"
  np.savez(path, **state_dict)
  return str(path)


@pytest.fixture(scope="module")
def features(weights_npz):
  return I.InceptionFeatures(weights_npz, batch_size=BATCH, image_size=SIZE)


def _images(n: int, seed: int) -> np.ndarray:
  """Smooth random colour images [n, SIZE, SIZE, 3] in [0, 1]."""
  rng = np.random.default_rng(seed)
  t = np.linspace(0, 1, SIZE)
  yy, xx = np.meshgrid(t, t, indexing="ij")
  freq = rng.uniform(1, 6, (n, 1, 1, 3))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 3))
  return (0.5 + 0.4 * np.sin(freq * (xx + yy)[None, ..., None] * np.pi + phase)).astype(np.float32)


def test_layer_table_and_parameter_count(features):
  table = I.torch_shapes()
  expected = {}
  for name, cin, cout, kh, kw in _basic_convs():
    expected[f"{name}.conv.weight"] = (cout, cin, kh, kw)
    for s in ("weight", "bias", "running_mean", "running_var"):
      expected[f"{name}.bn.{s}"] = (cout,)
  assert table == expected  # Every key and shape of pytorch-fid's state dict (fc.* aside).
  assert len(_basic_convs()) == 94 and len(table) == 470
  count = sum(kh * kw * cin * cout + 2 * cout for _, cin, cout, kh, kw in _basic_convs())
  # Cross-check with torchvision's documented inception_v3 size, 27,161,264 (aux head, 1,000
  # classes), minus AuxLogits (conv 768->128 1x1, conv 128->768 5x5, each + BN scale/bias,
  # fc 768->1000) and the final fc 2048->1000; the FID blocks add no parameters.
  aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
  assert count == 27_161_264 - aux - (2048 * 1000 + 1000) == 21_785_568
  assert I.num_params(features.variables) == 21_785_568
  # 21,802,784 = these + one of the two BN running statistics (17,216 each); both: 21,820,000.
  stats = sum(np.size(v) for v in jax.tree_util.tree_leaves(features.variables["batch_stats"]))
  assert stats == 2 * 17_216 and 21_785_568 + stats == 21_820_000


def test_loader_transposes_convs_and_maps_batch_norm(features, state_dict):
  v = features.variables
  w = state_dict["Mixed_6b.branch7x7_2.conv.weight"]  # [O, I, 1, 7]
  k = np.asarray(v["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"])  # [1, 7, I, O]
  assert k.shape == (1, 7, 128, 128) and k[0, 5, 3, 9] == w[9, 3, 0, 5]
  bn = "Mixed_7c.branch_pool.bn"
  np.testing.assert_array_equal(v["params"]["Mixed_7c"]["branch_pool"]["bn"]["scale"],
                                state_dict[f"{bn}.weight"])
  np.testing.assert_array_equal(v["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                state_dict[f"{bn}.running_var"])


def test_basic_conv_is_conv_then_inference_batch_norm_eps_1e3_then_relu():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
  kernel = rng.standard_normal((1, 1, 2, 3)).astype(np.float32)
  mean, var = rng.standard_normal(3), rng.uniform(0.0, 0.01, 3)  # var ~ eps: eps matters.
  scale, bias = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
  v = {"params": {"conv": {"kernel": kernel}, "bn": {"scale": scale, "bias": bias}},
       "batch_stats": {"bn": {"mean": mean, "var": var}}}
  out = I.BasicConv2d(3).apply(v, x)
  ref = np.maximum((x @ kernel[0, 0] - mean) / np.sqrt(var + 1e-3) * scale + bias, 0)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_pools_leave_padding_out():
  x = jnp.ones((1, 4, 4, 1))
  np.testing.assert_allclose(I._avg_pool_3x3(x), 1.0)  # count_include_pad=False: no 4/9 or 6/9.
  neg = -jnp.ones((1, 4, 4, 1))
  np.testing.assert_allclose(I._max_pool_3x3(neg, 1, pad=1), -1.0)  # Padding is -inf, not 0.
  assert I._max_pool_3x3(jnp.zeros((1, 147, 147, 1)), 2).shape == (1, 73, 73, 1)


def test_preprocess_is_pytorch_bilinear_then_minus_one_to_one():
  row = jnp.asarray([0.0, 1.0]).reshape(1, 1, 2, 1) * jnp.ones((1, 2, 1, 3))  # [1, 2, 2, 3]
  out = np.asarray(I.preprocess(row, size=4))
  # F.interpolate([0, 1], size=4, mode="bilinear", align_corners=False) = [0, .25, .75, 1].
  np.testing.assert_allclose(out[0, 0, :, 0], 2 * np.array([0, 0.25, 0.75, 1.0]) - 1, atol=1e-6)
  x = np.random.default_rng(0).uniform(size=(1, 64, 48, 3)).astype(np.float32)
  up = np.asarray(I.preprocess(x))
  ref = jax.image.resize(x, (1, 299, 299, 3), "linear", antialias=False)
  assert up.shape == (1, 299, 299, 3)
  np.testing.assert_allclose(up, 2 * np.asarray(ref) - 1, atol=1e-5)
  same = np.random.default_rng(1).uniform(size=(1, 299, 299, 3)).astype(np.float32)
  np.testing.assert_allclose(I.preprocess(same), 2 * same - 1, atol=1e-6)


def test_features_shape_and_batching(features):
  x = _images(11, seed=0)
  f = features(x)  # Two batches of 8, the second padded.
  assert f.shape == (11, 2048) and f.dtype == np.float32 and np.isfinite(f).all()
  assert f.std(0).mean() > 1e-3  # Random weights still give image-dependent features.
  np.testing.assert_allclose(features(x[8:]), f[8:], rtol=1e-5, atol=1e-6)  # Padding-free.
  with pytest.raises(UserError, match="RGB"):
    features(x[..., :1])


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(features):
  x = _images(BATCH, seed=1)
  same = features.fid(x, x)
  small = features.fid(x, np.clip(x + 0.1, 0, 1))
  large = features.fid(x, np.clip(x + 0.3, 0, 1))
  assert abs(same) < 1e-6 * large
  assert 0 < small < large


def test_frechet_distance_with_fewer_samples_than_dimensions():
  """N <= D (Inception features) takes the exact N x N route; same value as the D x D one."""
  rng = np.random.default_rng(0)
  a = rng.normal(size=(10, 40)) @ rng.normal(size=(40, 40))
  b = rng.normal(loc=0.5, size=(7, 40))
  s1, s2 = np.cov(a.T), np.cov(b.T)
  tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
  expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  assert distances.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
  assert distances.frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)
  assert distances.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6 * np.trace(s1))


def test_missing_or_misshaped_weights_name_the_key(state_dict, tmp_path):
  sd = dict(state_dict)
  del sd["Mixed_6c.branch7x7dbl_3.conv.weight"]
  with pytest.raises(UserError, match=r"lacks the key 'Mixed_6c\.branch7x7dbl_3\.conv\.weight'"):
    I.variables_from_state_dict(sd)
  sd = dict(state_dict)
  sd["Mixed_5b.branch5x5_2.conv.weight"] = sd["Mixed_5b.branch5x5_2.conv.weight"].transpose(2, 3, 1, 0)
  with pytest.raises(UserError, match=r"'Mixed_5b\.branch5x5_2\.conv\.weight' has shape "
                                      r"\(5, 5, 48, 64\), expected \(64, 48, 5, 5\)"):
    I.variables_from_state_dict(sd)
  partial = tmp_path / "partial.npz"
  np.savez(partial, **{"Conv2d_1a_3x3.conv.weight": state_dict["Conv2d_1a_3x3.conv.weight"]})
  with pytest.raises(UserError, match="lacks the key") as e:
    I.load_inception(str(partial))
  assert "\n" not in str(e.value) and "convert_inception_weights.py" in str(e.value)


def test_bad_paths_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    I.load_inception(str(tmp_path / "absent.npz"))
  (tmp_path / "w.h5").write_bytes(b"")
  with pytest.raises(UserError, match=r"expected a \.npz"):
    I.load_inception(str(tmp_path / "w.h5"))
  (tmp_path / "broken.npz").write_bytes(b"not a zip")
  with pytest.raises(UserError, match="cannot read"):
    I.load_inception(str(tmp_path / "broken.npz"))
  if importlib.util.find_spec("torch") is None:
    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(UserError, match="needs torch"):
      I.load_inception(str(tmp_path / "w.pth"))


class _FakeFeatures:
  """Stands in for InceptionFeatures: 8-d features (per-image channel means and stds), recording
  what it saw."""

  def __init__(self):
    self.calls = []

  def __call__(self, images):
    self.calls.append(images)
    return np.concatenate([images.mean((1, 2)), images.std((1, 2)), images[:, :2, 0, 0]], 1)


def test_gan_option_checks_the_file_and_adds_fid_to_the_image_folder_scores(weights_npz, tmp_path,
                                                                            monkeypatch):
  c = load_config("dcgan_cake", "smoke")
  assert c.eval.inception_weights == ""
  c.eval.inception_weights = str(tmp_path / "absent.npz")
  with pytest.raises(UserError, match="not found"):
    families.get(c)  # Fails when the family is built, i.e. before training.
  m = load_config("dcgan_mnist", "smoke")
  m.eval.inception_weights = weights_npz
  with pytest.raises(ConfigError, match="image folders"):
    families.get(m)

  seen = []
  monkeypatch.setattr(S, "swd", lambda gen, real: seen.append(gen) or {"swd": 1.0})
  test = {"image": np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)}
  samples = np.random.default_rng(1).uniform(size=(256, 64, 64, 3)).astype(np.float32)
  scores = {}
  for path in ("", weights_npz):
    c.eval.inception_weights = path
    fam = families.get(c)
    fam.sample = lambda state, key, num: samples[:num]  # The generator is tested elsewhere.
    fake = _FakeFeatures()  # The real one is tested above.
    scores[path] = sample_scores.sample_scores(fam, None, None, jax.random.PRNGKey(1), test,
                                               inception=fake if path else None)
  prdc_keys = {"precision", "recall", "density", "coverage"}
  assert set(scores[""]) == ({"swd", "kid_randcnn_x1e3", "kid_randcnn_x1e3_std"}
                             | {f"{k}_randcnn" for k in prdc_keys})
  assert set(scores[weights_npz]) == (set(scores[""]) | {"fid"}
                                     | {f"{k}_inception" for k in prdc_keys})
  generated, real = fake.calls  # Inception features of the same samples as the SWD, and the photos.
  assert generated is seen[-1] and generated.shape == (256, 64, 64, 3)
  np.testing.assert_allclose(real, test["image"] / 255.0, atol=1e-6)
  assert scores[weights_npz]["fid"] == pytest.approx(
      distances.frechet_distance(fake(generated), fake(real)))
  # Precision and the rest on as many samples as photos (16), real features first.
  n = len(real)
  for path, suffix, embed in (("", "randcnn", random_cnn.features_for(3)),
                              (weights_npz, "inception", fake)):
    expected = prdc.prdc(embed(real), embed(generated[:n]))
    assert {k: scores[path][f"{k}_{suffix}"] for k in prdc_keys} == pytest.approx(expected)
