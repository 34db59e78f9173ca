r"""pytorch-fid's Inception weights (.pth) -> the .npz that `eval.inception_weights` reads.

Needs torch (not a gm dependency); run it wherever torch is installed:

  python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth pt_inception.npz

The .pth is pytorch-fid's FID_WEIGHTS_URL
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth);
this script downloads nothing. It saves every tensor of the state dict under
its own key, in PyTorch's layout, then loads the result with
`gm.metrics.inception.load_inception` to check that every weight is there.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gm.errors import UserError  # noqa: E402
from gm.metrics import inception  # noqa: E402


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("pth", help="pytorch-fid's pt_inception-2015-12-05-*.pth")
  p.add_argument("npz", help="output .npz")
  args = p.parse_args(argv)
  try:
    state = inception._read_state_dict(inception.check_weights_path(args.pth))  # pylint: disable=protected-access
    inception.variables_from_state_dict(state, args.pth)  # Every weight, of the right shape.
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  np.savez(args.npz, **state)
  n = inception.num_params(inception.load_inception(args.npz))
  print(f"wrote {args.npz}: {len(state)} arrays, {n:,} FID-Inception parameters")
  return 0


if __name__ == "__main__":
  sys.exit(main())
