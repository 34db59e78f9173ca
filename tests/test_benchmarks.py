"""The benchmark harness measures what it says: per-step FLOPs, parameter counts, peers' sizes."""

import pytest

from benchmarks import cases, gm_bench

# MLP GAN (noise 96, batch 128) matmul MACs of one training step, counted by hand:
#   G fwd per example 96*1024 + 1024*1024 + 1024*784 = 1,949,696; D fwd 784*256 + 256*256 + 256 = 266,496.
#   D update: G fwd on 128 fakes; D fwd + input grads + weight grads on 256 images (no input grad at
#   the first layer). G update: G fwd + grads on 128 (no grad w.r.t. z); D fwd + input grads on 128.
_G, _D = 1_949_696, 266_496
MLP_GAN_STEP_FLOPS = 2 * (128 * _G + 256 * (3 * _D - 784 * 256) + 128 * (3 * _G - 96 * 1024)
                          + 128 * 2 * _D)


def test_measured_step_of_the_mlp_gan_counts_its_flops_and_parameters():
  case = next(c for c in cases.ALL if c.name == "gan_mlp")
  r = gm_bench.measure_train(case, steps=2, repeats=1)
  assert r["params"] == 1_952_528 + 267_009  # G and D of the CS231n notebook at noise 96
  assert r["step_s"] > 0 and r["finite"] and r["driver"] == "loop"
  flops = r["flops"]  # As compiled; no transposed convs here, so also the useful count.
  # XLA also counts elementwise work (activations, Adam): a few percent above the matmuls.
  assert 1.0 <= flops / MLP_GAN_STEP_FLOPS < 1.15, flops / MLP_GAN_STEP_FLOPS


def test_pytorch_peers_have_the_same_parameter_counts():
  torch_peers = pytest.importorskip("benchmarks.torch_peers")
  for case in cases.select(["ae", "vae", "cvae", "gan_mlp", "dcgan_mnist", "cgan",
                            "cake_transposed_b8", "cake_upsample_b8"]):
    config = gm_bench.load_config(case)
    peer = torch_peers.Peer(case, config, "eager", "cpu", n=config.train.batch_size)
    family, state, _ = gm_bench._generator(case, "float32")  # pylint: disable=protected-access
    del family
    assert peer.params == gm_bench.count_params(gm_bench._trainable(state)), case.name  # pylint: disable=protected-access


def test_unknown_case_lists_valid_names():
  with pytest.raises(SystemExit, match="valid: ae, vae"):
    cases.select("nope")


def test_precision_quality_permutation_p_value_counts_splits_by_hand():
  from benchmarks import precision_quality as pq  # pylint: disable=g-import-not-at-top
  # 1,2,3 vs 4,5,6: of the C(6,3) = 20 splits only the observed one and its mirror reach |diff| = 3.
  assert pq.permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 / 20)
  # 1,2,4 vs 3,5,6 (diff 7/3): also {1,2,3} vs {4,5,6} (diff 3) and both mirrors: 4 of 20.
  assert pq.permutation_p([1, 2, 4], [3, 5, 6]) == pytest.approx(4 / 20)
  assert pq.permutation_p([1, 2], [2, 1]) == 1.0
  s = pq.summarize({"float32": {0: {"last": 10.0, "last3": 12.0}, 1: {"last": 14.0, "last3": 12.0}},
                    "bfloat16": {0: {"last": 20.0, "last3": 13.0}, 1: {"last": 16.0, "last3": 15.0}}})
  assert s["last"]["float32"]["mean"] == 12.0 and s["last"]["float32"]["sd"] == pytest.approx(8 ** 0.5)
  assert s["last"]["diff"]["bfloat16"] == {"mean_diff": 6.0, "p": pytest.approx(2 / 6)}
  assert s["last3"]["diff"]["bfloat16"]["mean_diff"] == 2.0


def test_profile_groups_hlo_op_names_by_layer_and_direction():
  from benchmarks.profile_step import layer_of  # pylint: disable=g-import-not-at-top
  assert layer_of("jit(train_step)/transpose(jvp(DCGANMnistDiscriminator))/Conv_1/"
                  "bhwf,bhwc->fc/dot_general") == "bwd DCGANMnistDiscriminator/Conv_1"
  assert layer_of("jit(train_step)/jvp(DCGANMnistGenerator)/BatchNorm_0/add") == (
      "fwd DCGANMnistGenerator/BatchNorm_0")
  assert layer_of("jit(train_step)/DCGANMnistGenerator/Dense_0/dot_general") == (
      "fwd DCGANMnistGenerator/Dense_0")
  assert layer_of("jit(train_step)/jit(_threefry_split)/GAN.d_step/while/body/add") == (
      "other (loss, RNG, glue)")
  assert layer_of("state.d.params['Dense_1']['bias']") == "optimizer update (per-parameter)"
  assert layer_of("jit(train_step)/transpose(jvp(AutoencoderNet.decode))/decoder/ConvTranspose_1/"
                  "transpose(jvp())/conv_general_dilated") == "bwd AutoencoderNet/decoder/ConvTranspose_1"


def test_inversion_timing_refuses_a_difference_swamped_by_noise(monkeypatch):
  """Every call 'takes' 1 s: the long call is not slower, so no step time is made up."""
  clock = iter(range(10**6))
  monkeypatch.setattr(gm_bench.time, "perf_counter", lambda: next(clock))
  monkeypatch.setattr(gm_bench.gm_invert, "invert", lambda *a, **k: None)
  case = next(c for c in cases.ALL if c.name == "invert_dcgan_mnist_64")
  with pytest.raises(RuntimeError, match="took no longer"):
    gm_bench.measure_invert(case, steps=5)


def test_inversion_timing_leaves_compiles_and_fixed_costs_out(monkeypatch):
  """A fake invert: 10 s to compile each step count once, 0.5 s fixed, 0.1 s per step."""
  now, seen = [0.0], set()

  def fake_invert(*args, steps, **kwargs):
    del args, kwargs
    now[0] += (0.0 if steps in seen else 10.0) + 0.5 + 0.1 * steps
    seen.add(steps)

  monkeypatch.setattr(gm_bench.time, "perf_counter", lambda: now[0])
  monkeypatch.setattr(gm_bench.gm_invert, "invert", fake_invert)
  case = next(c for c in cases.ALL if c.name == "invert_dcgan_mnist_64")
  r = gm_bench.measure_invert(case, steps=5)
  assert r["step_s"] == pytest.approx(0.1) and r["compile_s"] == pytest.approx(10.0)
  assert r["images_per_s"] == pytest.approx(640.0)


def test_run_projection_adds_the_steady_whole_epoch_cost_to_the_measured_run():
  from benchmarks import project_run  # pylint: disable=g-import-not-at-top
  # 6 epochs of 10 steps: epoch 1 holds the compile (5 s); then 0.2 s of steps per epoch, and the
  # loop's time grows by 0.25 s per epoch, 0.5 s at the even (evaluated) ones.
  epoch_s = [5.0, 0.2, 0.2, 0.21, 0.19, 0.2]
  growth = [5.0, 0.5, 0.25, 0.5, 0.25, 0.5]
  records = [{"epoch": e + 1, "step": 10 * (e + 1), "time/epoch_s": t,
              "time/session_s": sum(growth[:e + 1]), **({"test/x": 1.0} if e % 2 else {})}
             for e, t in enumerate(epoch_s)]
  out = project_run.project(records, wall_s=9.0, target_epochs=106, cycle=2, steps_per_epoch=10)
  assert out["epoch_s"] == pytest.approx(0.2) and out["step_ms"] == pytest.approx(20.0)
  assert out["whole_epoch_s"] == pytest.approx(0.375)  # (0.25 + 0.5) / 2
  assert out["projected_s"] == pytest.approx(9.0 + 100 * 0.375)
  assert out["projected_steps_only_s"] == pytest.approx(106 * 0.2)
  assert out["window_evals"] == 1 and out["window_scores"] == 0
  every2 = project_run.project(records, 9.0, 106, cycle=2, steps_per_epoch=10, checkpoint_every=2)
  assert out["window_checkpoints"] == 2 and every2["window_checkpoints"] == 1  # after epochs 4, 5
  with pytest.raises(ValueError, match="shorter than the run"):
    project_run.project(records, 9.0, 106, cycle=6, steps_per_epoch=10)
  with pytest.raises(ValueError, match="uninterrupted run"):
    project_run.project(records[1:], 9.0, 106, cycle=2, steps_per_epoch=10)
  # The cake config's schedule: checkpoints every 100 epochs, eval every 10, judge every 100.
  assert project_run.schedule_period({"checkpoint_every": 100, "eval_every": 10},
                                     {"score_every": 100}) == 100
  assert project_run.schedule_period({"checkpoint_every": 4, "eval_every": 6}, {}) == 12
