r"""The MNIST judge: a small CNN that eval commands load to score generated digits.

  python train.py --config configs/classifier_mnist.py --workdir runs/classifier_mnist
  python train.py --config configs/classifier_mnist.py:smoke --workdir /tmp/judge

Generative runs find it through `eval.judge` or --judge (a run directory or a .npz). The default,
`builtin`, is gm/metrics/judge_mnist.npz: a run of this config (5 epochs on the full MNIST, seed 0)
written by scripts/export_judge.py, so scores compare across machines.
"""

from configs import common
from gm.config_utils import parse_arg


def get_config(arg=None):
  args = parse_arg(arg, smoke=False)
  c = common.base()
  c.family = "classifier"
  c.model.features = 128
  c.model.dropout = 0.3
  c.optim.lr = 1e-3
  c.optim.schedule = "cosine"
  c.train.batch_size = 128
  c.train.num_epochs = 8
  if args.smoke:
    common.shrink_for_smoke(c)
    c.data.num_train = 2048
  return c
