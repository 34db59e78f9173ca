#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md (Issue 7's targets) in about 9 minutes, most important
# first. Results go to $OUT (default runs/gpu_session).
#
# Once per checkout, on a machine that has the data (the four MNIST idx .gz files and a folder of
# cake photos):
#   bash benchmarks/gpu_session.sh --prepare <mnist idx dir> <photo folder>
# writes .devdata/ (git-ignored): the data, and a Python 3.12 wheel of ml_collections, installed
# from there (no network needed) when the GPU machine's Python lacks it.
# Then, in that checkout (or a copy of it, .devdata/ included) on a GPU machine with JAX, Flax,
# Optax and PyTorch for the GPU (requirements.txt, benchmarks/requirements.txt):
#   bash benchmarks/gpu_session.sh                           # results in runs/gpu_session
#   OUT=<results dir> bash benchmarks/gpu_session.sh         # results elsewhere
#
# Stages, each under its own time limit (STAGE_S=... scales them) and all within DEADLINE_S (default
# 540) seconds of the start, each writing as it goes:
#   1 cake.json     cake DCGAN, transposed G, batch 8/64/256: gm float32 and bfloat16 against PyTorch
#                   eager, autocast + channels_last and torch.compile; % of the bf16 peak (run.py)
#   2 mnist.json    the full-MNIST DCGAN epoch (60,000 images, batch 128) with train.py (project_run.py)
#   3 cake_run.json the assignment's cake run (1,000 photos, batch 8, 3000 epochs) projected from a
#                   real run of train.py with the config's eval/score/checkpoint schedule
#                   (project_run.py)
#   4 rest.json     the rest of the table: upsampling G, the MNIST families, inversion (run.py)
# log.txt holds everything printed, the machine's description first.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=.devdata

if [[ "${1:-}" == "--prepare" ]]; then
  mnist=${2:?give the MNIST idx directory}; photos=${3:?give the folder of cake photos}
  mkdir -p "$DATA/mnist" "$DATA/cake1000/a" "$DATA/cake1000/b" "$DATA/whl"
  cp "$mnist"/*-ubyte.gz "$DATA/mnist/"
  mapfile -t files < <(find "$photos" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort)
  (( ${#files[@]} > 0 )) || { echo "error: no photos under $photos" >&2; exit 2; }
  for i in "${!files[@]}"; do  # The assignment's ~1,000 photos: all of them, then repeats up to 1,000.
    cp "${files[$i]}" "$DATA/cake1000/a/$i.${files[$i]##*.}"
  done
  for ((i = ${#files[@]}; i < 1000; i++)); do
    f=${files[$((i % ${#files[@]}))]}; cp "$f" "$DATA/cake1000/b/$i.${f##*.}"
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$DATA/whl" \
    "ml_collections>=0.1.1"
  du -sh "$DATA"; exit 0
fi

OUT=${OUT:-runs/gpu_session}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
start=$SECONDS
limit() {  # A stage's seconds: its own limit x STAGE_S, cut to what is left before DEADLINE_S.
  python3 -c "print(max(1, int(min($1 * ${STAGE_S:-1}, ${DEADLINE_S:-540} - ($SECONDS - $start)))))"
}
if [[ -d "$DATA/whl" ]] && ! python3 -c "import ml_collections" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gm_site "$DATA"/whl/*.whl
  export PYTHONPATH=/tmp/gm_site${PYTHONPATH:+:$PYTHONPATH}
fi
date; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv 2>/dev/null
python3 -c "import jax, flax, optax; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" || true
train_flags=(--config.train.tensorboard=False)  # tensorboardX may not be installed there.

echo "== 1 cake DCGAN, transposed G, batch 8/64/256"
timeout -s INT "$(limit 230)" python3 benchmarks/run.py \
  --cases cake_transposed_b8,cake_transposed_b64,cake_transposed_b256 \
  --steps 50 --repeats 3 --json "$OUT/cake.json"

echo "== 2 DCGAN-MNIST epoch (train.py, 60k images, batch 128)"
python3 benchmarks/project_run.py --config configs/dcgan_mnist.py --epochs 4 --target_epochs 5 \
  --time_limit "$(limit 60)" --grace_s 10 --workdir "/tmp/gm_gpu_session/mnist_$$" --json "$OUT/mnist.json" -- \
  --config.data.source=idx --config.data.dir="$DATA/mnist" "${train_flags[@]}"

echo "== 3 the assignment's cake run: 1,000 photos, batch 8, 3000 epochs, projected"
python3 benchmarks/project_run.py --config configs/dcgan_cake.py --epochs 200 --target_epochs 3000 \
  --time_limit "$(limit 110)" --grace_s 20 --workdir "/tmp/gm_gpu_session/cake_$$" --json "$OUT/cake_run.json" -- \
  --config.data.dir="$DATA/cake1000" --config.data.cache_dir=/tmp/gm_gpu_session/cache "${train_flags[@]}"

echo "== 4 the rest of the table"
timeout -s INT "$(limit 140)" python3 benchmarks/run.py \
  --cases cake_upsample_b8,cake_upsample_b64,cake_upsample_b256,dcgan_mnist,cgan,gan_mlp,ae,vae,cvae,invert_dcgan_mnist_64,invert_cake_16 \
  --steps 50 --repeats 3 --json "$OUT/rest.json"
echo "== done"; date
