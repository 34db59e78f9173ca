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
