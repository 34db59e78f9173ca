r"""The 32x32 report's carrot-cake DCGAN (a PyTorch report, 32x32 photos).

  python train.py --config configs/dcgan_cake32.py --workdir runs/cake32 \
      --config.data.dir=<folder of photos>
  python eval.py invert --workdir runs/cake32 --index 0,1 --loss sse   # the report's inversion

As the report: photos resized to 32x32 and scaled to [-1, 1]; discriminator
three conv 4x4 stride 2 padding 2 (32, 64, 128) with batch norm and
LeakyReLU(0.2), dropout 0.5, dense 1 (169,249 parameters); generator z in R^64
from N(0, I), dense 4x4x64, transposed convs 4x4 stride 2 (64, 128, 256) with
LeakyReLU(0.2), conv 5x5 to RGB, tanh (807,107 parameters); PyTorch's default
initialisation and batch-norm settings. Per step: one discriminator update on
16 real photos (target 1) and 16 fresh fakes (target 0) in two forward passes,
both gradients in one Adam step (lr 1e-5, betas 0.5 / 0.999); then one
generator update on 16 fresh fakes labelled real (Adam lr 1.5e-5). Binary
cross-entropy. The report trained 2,000 epochs (8 hours on a GPU).

Its inversion: z from N(0, I), the sum (not the mean) of squared differences
of tanh outputs (`eval.py invert --loss sse`), SGD lr 0.01, momentum 0.9, 100
steps. With `--loss mse` the same learning rate moves z 12,288 times less
(4 for [-1, 1] vs [0, 1], times 32*32*3 pixels).

Args (comma-separated): smoke (1/8 of the filters, 64 photos, 2 epochs).
"""

from configs import common
from configs import dcgan_cake
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False)
  c = dcgan_cake.get_config()
  c.data.image_size = 32
  common.architectures(c, "dcgan_cake32", "dcgan_cake32")
  c.model.noise_dim = 64
  c.model.noise = "normal"
  c.loss.name = "ns"
  c.loss.label_noise = 0.0
  c.optim_g.lr, c.optim_d.lr = 1.5e-5, 1e-5
  for o in (c.optim_g, c.optim_d):
    o.b1, o.b2 = 0.5, 0.999
  c.augment = common.augment()
  c.train.batch_size = 16
  c.train.num_epochs = 2000
  c.train.checkpoint_every = 100
  c.train.eval_every = 10
  c.train.d_bn_in_g_step = "batch"  # PyTorch: D stays in train mode in the G step.
  c.train.d_batches = "separate"    # D(real) and D(fake) are two forward passes.
  c.eval.score_every = 100
  if args.smoke:
    dcgan_cake.smoke(c)
  return c
