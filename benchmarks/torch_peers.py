"""PyTorch reference implementations of the benchmarked models and update rules.

Each peer is the same architecture (same layer sizes, so the same parameter
count, checked by `run.py`) and the same update rule as the `gm` family: the
same losses, Adam settings, discriminator step on real and fake images in one
batch, generator step on fresh fakes, the cake's on-device augmentation
(flip, zoom, rotation as one bilinear affine warp). Written as a PyTorch user
would (the reference documents' style): NCHW modules, `torch.optim.Adam`, batches gathered
from a device-resident uint8 tensor.

Modes: 'eager' (float32), 'autocast' (bfloat16 autocast + channels_last) and
'compile' (`torch.compile` of the networks, float32).
"""

import math
import time
from typing import Any, Dict

import torch
from torch import nn
import torch.nn.functional as F

MODES = ("eager", "autocast", "compile")


# --- networks ------------------------------------------------------------------------------

def _tf_bn1d(n):
  return nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)  # TF momentum 0.99 = torch 0.01.


def _tf_bn2d(n):
  return nn.BatchNorm2d(n, eps=1e-3, momentum=0.01)


class ConvEncoder(nn.Module):
  """gm.models.ConvEncoder: two 3x3 convs (32, 64) with ReLU, flatten (+ condition), dense."""

  def __init__(self, features, strides=(2, 2), size=28, cond_dim=0):
    super().__init__()
    pads = [0 if size == 28 else (0 if s == 3 else 1) for s in strides]  # VALID, or TF 'SAME'
    self.c1 = nn.Conv2d(1, 32, 3, strides[0], pads[0])
    self.c2 = nn.Conv2d(32, 64, 3, strides[1], pads[1])
    with torch.no_grad():
      flat = self.c2(self.c1(torch.zeros(1, 1, size, size))).numel()
    self.fc = nn.Linear(flat + cond_dim, features)

  def forward(self, x, cond=None):
    h = F.relu(self.c2(F.relu(self.c1(x)))).flatten(1)
    if cond is not None:
      h = torch.cat([h, cond], 1)
    return self.fc(h)


class ConvDecoder(nn.Module):
  """gm.models.ConvDecoder: dense 7*7*32, ReLU; transposed convs 64, 32 (ReLU); transposed conv to 1."""

  def __init__(self, latent, strides=(2, 2), cond_dim=0):
    super().__init__()
    self.fc = nn.Linear(latent + cond_dim, 7 * 7 * 32)
    layers, cin = [], 32
    for c, s in zip((64, 32), strides):
      layers.append(nn.ConvTranspose2d(cin, c, 3, s, padding=1 if s == 2 else 0,
                                       output_padding=1 if s == 2 else 0))
      cin = c
    self.ups = nn.ModuleList(layers)
    self.out = nn.ConvTranspose2d(32, 1, 3, 1, padding=1)

  def forward(self, z, cond=None):
    if cond is not None:
      z = torch.cat([z, cond], 1)
    h = F.relu(self.fc(z)).view(-1, 32, 7, 7)
    for up in self.ups:
      h = F.relu(up(h))
    return self.out(h)


class MLPGenerator(nn.Module):
  def __init__(self, noise, cond_dim=0):
    super().__init__()
    self.net = nn.Sequential(nn.Linear(noise + cond_dim, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                             nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())

  def forward(self, z, cond=None):
    if cond is not None:
      z = torch.cat([z, cond], 1)
    return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
  def __init__(self, cond_dim=0):
    super().__init__()
    self.net = nn.Sequential(nn.Linear(784 + cond_dim, 256), nn.LeakyReLU(0.01), nn.Linear(256, 256),
                             nn.LeakyReLU(0.01), nn.Linear(256, 1))

  def forward(self, x, cond=None):
    return self.net(x.flatten(1))[:, 0]


class DCGANMnistGenerator(nn.Module):
  """InfoGAN generator (gm.models.gan.DCGANMnistGenerator): ReLU before batch norm, as gm."""

  def __init__(self, noise, cond_dim=0):
    super().__init__()
    self.fc1, self.bn1 = nn.Linear(noise + cond_dim, 1024), _tf_bn1d(1024)
    self.fc2, self.bn2 = nn.Linear(1024, 7 * 7 * 128), _tf_bn1d(7 * 7 * 128)
    self.up1, self.bn3 = nn.ConvTranspose2d(128, 64, 4, 2, 1), _tf_bn2d(64)
    self.up2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

  def forward(self, z, cond=None):
    if cond is not None:
      z = torch.cat([z, cond], 1)
    h = self.bn2(F.relu(self.fc2(self.bn1(F.relu(self.fc1(z)))))).view(-1, 128, 7, 7)
    h = self.bn3(F.relu(self.up1(h)))
    return torch.tanh(self.up2(h))


class DCGANMnistDiscriminator(nn.Module):
  def __init__(self, cond_dim=0):
    super().__init__()
    self.c1, self.c2 = nn.Conv2d(1, 32, 5), nn.Conv2d(32, 64, 5)
    self.fc1, self.fc2 = nn.Linear(4 * 4 * 64 + cond_dim, 4 * 4 * 64), nn.Linear(4 * 4 * 64, 1)

  def forward(self, x, cond=None):
    h = F.max_pool2d(F.leaky_relu(self.c1(x), 0.01), 2)
    h = F.max_pool2d(F.leaky_relu(self.c2(h), 0.01), 2).flatten(1)
    if cond is not None:
      h = torch.cat([h, cond], 1)
    return self.fc2(F.leaky_relu(self.fc1(h), 0.01))[:, 0]


class CakeDiscriminator(nn.Module):
  def __init__(self):
    super().__init__()
    layers, cin = [], 3
    for f in (64, 128, 128):
      layers += [nn.Conv2d(cin, f, 4, 2, 1), _tf_bn2d(f), nn.LeakyReLU(0.2)]
      cin = f
    self.convs = nn.Sequential(*layers)
    self.drop, self.fc = nn.Dropout(0.2), nn.Linear(8 * 8 * 128, 1)

  def forward(self, x, cond=None):
    return self.fc(self.drop(self.convs(x).flatten(1)))[:, 0]


class CakeGenerator(nn.Module):
  """The assignment's transposed generator (gm 'dcgan_cake')."""

  def __init__(self, noise=128):
    super().__init__()
    self.fc = nn.Linear(noise, 8 * 8 * 128)
    layers, cin = [], 128
    for f in (128, 256, 512):
      layers += [nn.ConvTranspose2d(cin, f, 4, 2, 1), nn.LeakyReLU(0.2)]
      cin = f
    self.ups = nn.Sequential(*layers)
    self.out = nn.Conv2d(512, 3, 5, padding=2)

  def forward(self, z, cond=None):
    return torch.sigmoid(self.out(self.ups(self.fc(z).view(-1, 128, 8, 8))))


class CakeUpsampleGenerator(nn.Module):
  """The assignment's upsampling generator (gm 'dcgan_cake_upsample')."""

  def __init__(self, noise=128):
    super().__init__()
    self.fc = nn.Linear(noise, 8 * 8 * 128)
    layers, cin = [], 128
    for f in (64, 128, 256):
      layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
      for _ in range(2):
        layers += [nn.Conv2d(cin, f, 3, padding=1), _tf_bn2d(f), nn.LeakyReLU(0.2)]
        cin = f
    self.body = nn.Sequential(*layers)
    self.out = nn.Conv2d(256, 3, 5, padding=2)

  def forward(self, z, cond=None):
    return torch.sigmoid(self.out(self.body(self.fc(z).view(-1, 128, 8, 8))))


GENERATORS = {"mlp": MLPGenerator, "dcgan_mnist": DCGANMnistGenerator,
              "dcgan_cake": CakeGenerator, "dcgan_cake_upsample": CakeUpsampleGenerator}
DISCRIMINATORS = {"mlp": MLPDiscriminator, "dcgan_mnist": DCGANMnistDiscriminator,
                  "dcgan_cake": CakeDiscriminator}


# --- update rules --------------------------------------------------------------------------

def _augment(x: torch.Tensor, zoom: float, rotate: float) -> torch.Tensor:
  """Random flip, zoom and rotation as one bilinear affine warp per image, reflected borders."""
  b = x.shape[0]
  sign = torch.where(torch.rand(b, device=x.device) < 0.5, -1.0, 1.0)
  scale = 1.0 + (torch.rand(b, device=x.device) * 2 - 1) * zoom
  angle = (torch.rand(b, device=x.device) * 2 - 1) * rotate * math.pi / 180
  cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
  theta = torch.stack([torch.stack([cos * sign, -sin, torch.zeros_like(cos)], -1),
                       torch.stack([sin * sign, cos, torch.zeros_like(cos)], -1)], -2)
  grid = F.affine_grid(theta, list(x.shape), align_corners=False)
  return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _adam(params, optim_cfg):
  return torch.optim.Adam(params, lr=optim_cfg.lr, betas=(optim_cfg.b1, optim_cfg.b2), eps=1e-8)


def _set_bn_eval(module: nn.Module, frozen: bool):
  for m in module.modules():
    if isinstance(m, nn.modules.batchnorm._BatchNorm):  # pylint: disable=protected-access
      m.train(not frozen)


class Peer:
  """One PyTorch training (or inversion) step of a case: `step()` runs it on device data."""

  def __init__(self, case, config, mode: str, device: str, n: int, seed: int = 0):
    if mode not in MODES:
      raise ValueError(f"unknown PyTorch mode {mode!r}; valid: {', '.join(MODES)}")
    torch.manual_seed(seed)
    self.case, self.config, self.mode, self.device = case, config, mode, torch.device(device)
    self.channels_last = mode == "autocast"
    h, w, c = case.image_shape
    g = torch.Generator(device="cpu").manual_seed(seed)
    self.images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g).to(self.device)
    self.labels = torch.randint(0, 10, (n,), generator=g).to(self.device)
    self.cond = torch.rand(n, case.cond_dim, generator=g).to(self.device) if case.cond_dim else None
    self.n = n
    self.family = config.family
    self.nets = self._build()
    for net in self.nets.values():
      net.to(self.device)
      if self.channels_last:
        net.to(memory_format=torch.channels_last)
    self.params = sum(p.numel() for net in self.nets.values() for p in net.parameters())
    self.fns = {k: (torch.compile(v) if mode == "compile" else v) for k, v in self.nets.items()}
    self.opts = {k: _adam(v.parameters(), self._optim_cfg(k)) for k, v in self.nets.items()}
    self._i = 0
    self._perm = torch.randperm(n, device=self.device)

  # -- construction --

  def _optim_cfg(self, name):
    if self.family in ("gan",):
      return self.config.optim_g if name == "g" else self.config.optim_d
    return self.config.optim

  def _build(self) -> Dict[str, nn.Module]:
    m = self.config.model
    if self.family in ("ae", "vae", "cvae"):
      mult = 1 if self.family == "ae" else 2
      size = self.case.image_shape[0]
      enc = ConvEncoder(m.latent_dim * mult, tuple(m.get("encoder_strides", (2, 2))), size,
                        self.case.cond_dim)
      dec = ConvDecoder(m.latent_dim, tuple(m.get("decoder_strides", (2, 2))), self.case.cond_dim)
      return {"enc": enc, "dec": dec}
    k = m.get("num_classes", 0)
    g = GENERATORS[m.generator](m.noise_dim, k) if m.generator in ("mlp", "dcgan_mnist") else \
        GENERATORS[m.generator](m.noise_dim)
    d = DISCRIMINATORS[m.discriminator](k) if m.discriminator != "dcgan_cake" else \
        DISCRIMINATORS[m.discriminator]()
    return {"g": g, "d": d}

  # -- one step --

  def _batch(self, b):
    if self._i + b > self.n:
      self._perm, self._i = torch.randperm(self.n, device=self.device), 0
    idx = self._perm[self._i:self._i + b]
    self._i += b
    x = self.images[idx].float() / 255.0
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    return x, self.labels[idx], (None if self.cond is None else self.cond[idx])

  def _autocast(self):
    return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.mode == "autocast")

  def step(self):
    if self.case.kind == "invert":
      return self._invert_step()
    if self.family in ("ae", "vae", "cvae"):
      return self._autoencoder_step()
    return self._gan_step()

  def _autoencoder_step(self):
    b = self.config.train.batch_size
    x, _, cond = self._batch(b)
    if self.config.data.get("binarize", False):
      x = (x > 0.5).float()
    enc, dec = self.fns["enc"], self.fns["dec"]
    for o in self.opts.values():
      o.zero_grad(set_to_none=True)
    with self._autocast():
      h = enc(x, cond)
      if self.family == "ae":
        logits = dec(h, cond)
        loss = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none").sum((1, 2, 3)).mean()
      else:
        d = self.config.model.latent_dim
        mean, logvar = h[:, :d].float(), h[:, d:].float()
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = dec(z, cond).float()
        log_px = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        if self.config.loss.kl == "analytic":
          kl = 0.5 * (torch.exp(logvar) + mean ** 2 - 1.0 - logvar).sum(1)
        else:  # Single-sample Monte Carlo: log q(z|x) - log p(z).
          log2pi = math.log(2 * math.pi)
          log_q = (-0.5 * ((z - mean) ** 2 * torch.exp(-logvar) + logvar + log2pi)).sum(1)
          log_p = (-0.5 * (z ** 2 + log2pi)).sum(1)
          kl = log_q - log_p
        loss = -(log_px - self.config.loss.beta * kl).mean()
    loss.backward()
    for o in self.opts.values():
      o.step()
    return loss

  def _one_hot(self, labels):
    k = self.config.model.get("num_classes", 0)
    return F.one_hot(labels, k).float() if k else None

  def _noise(self, b):
    if self.config.model.get("noise", "uniform") == "normal":
      return torch.randn(b, self.config.model.noise_dim, device=self.device)
    return torch.rand(b, self.config.model.noise_dim, device=self.device) * 2 - 1

  def _gan_step(self):
    cfg = self.config
    b = cfg.train.batch_size
    g, d = self.fns["g"], self.fns["d"]
    dnet = self.nets["d"]
    x, labels, _ = self._batch(b)
    lo, hi = (0.0, 1.0) if cfg.model.generator.startswith("dcgan_cake") else (-1.0, 1.0)
    aug = cfg.get("augment", {})
    if aug.get("zoom", 0.0) or aug.get("rotate", 0.0):
      x = _augment(x, aug.zoom, aug.rotate)
    x = lo + (hi - lo) * x
    cond = self._one_hot(labels)
    noise = cfg.loss.get("label_noise", 0.0)
    # Discriminator: real and fresh fakes in one batch, soft targets.
    with torch.no_grad(), self._autocast():
      fake = g(self._noise(b), cond)
    both = torch.cat([x, fake.to(x.dtype)])
    both_cond = None if cond is None else torch.cat([cond, cond])
    t = torch.cat([torch.full((b,), 1.0 - cfg.loss.get("label_smoothing", 0.0), device=self.device),
                   torch.zeros(b, device=self.device)])
    if noise:
      t = t + (torch.rand(2 * b, device=self.device) * 2 - 1) * noise
    self.opts["d"].zero_grad(set_to_none=True)
    with self._autocast():
      d_loss = F.binary_cross_entropy_with_logits(d(both, both_cond).float(), t)
    d_loss.backward()
    self.opts["d"].step()
    # Generator: fresh fakes labelled real; D's batch norm frozen where the config says so.
    frozen = cfg.train.get("d_bn_in_g_step", "batch") == "running"
    _set_bn_eval(dnet, frozen)
    for p in dnet.parameters():
      p.requires_grad_(False)
    self.opts["g"].zero_grad(set_to_none=True)
    gcond = self._one_hot(torch.randint(0, 10, (b,), device=self.device)) if cond is not None else None
    with self._autocast():
      out = d(g(self._noise(b), gcond), gcond).float()
      g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
    g_loss.backward()
    self.opts["g"].step()
    for p in dnet.parameters():
      p.requires_grad_(True)
    _set_bn_eval(dnet, False)
    return g_loss

  def _invert_step(self):
    if not hasattr(self, "_z"):
      gnet = self.nets["g"].eval()
      for p in gnet.parameters():
        p.requires_grad_(False)
      t = self.case.invert_targets
      self._targets = self.images[:1].float().div(255.0).repeat(t, 1, 1, 1)
      self._z = self._noise(t).requires_grad_(True)
      self._zopt = torch.optim.Adam([self._z], lr=0.01)
      lo, hi = (0.0, 1.0) if self.config.model.generator.startswith("dcgan_cake") else (-1.0, 1.0)
      self._unit = lambda im: ((im - lo) / (hi - lo)).clamp(0, 1)
    self._zopt.zero_grad(set_to_none=True)
    with self._autocast():
      images = self._unit(self.fns["g"](self._z).float())
    loss = ((images - self._targets) ** 2).mean((1, 2, 3)).sum()
    loss.backward()
    self._zopt.step()
    return loss


def sync(device):
  if torch.device(device).type == "cuda":
    torch.cuda.synchronize()


def measure(case, config, mode: str, device: str, steps: int, repeats: int = 3) -> Dict[str, Any]:
  """Steady-state seconds per step of the PyTorch peer (best of `repeats` runs of `steps` steps)."""
  per_step = config.train.batch_size
  peer = Peer(case, config, mode, device, n=max(per_step * steps, per_step))
  if torch.device(device).type == "cuda":
    torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  for _ in range(3):  # Warm-up (torch.compile compiles here).
    loss = peer.step()
  sync(device)
  warm = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      loss = peer.step()
    sync(device)
    times.append(time.perf_counter() - t0)
  step_s = min(times) / steps
  images = case.invert_targets if case.kind == "invert" else per_step
  mem = torch.cuda.max_memory_allocated() if torch.device(device).type == "cuda" else None
  return {"step_s": step_s, "images_per_s": images / step_s,
          "compile_s": max(warm - 3 * step_s, 0.0), "params": peer.params if case.kind != "invert"
          else int(peer._z.numel()),  # pylint: disable=protected-access
          "memory_bytes": mem, "finite": bool(torch.isfinite(loss).item())}

