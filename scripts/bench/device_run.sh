#!/usr/bin/env bash
# One lease of a GPU device machine (the `device` tool): installs the carried wheels (.whl: brax, mujoco, mjx,
# Playground, gymnax, flashbax, ... which that machine's image lacks; it has jax, flax, optax, chex and orbax),
# checks the imports, then runs the GPU measurements in priority order, each under its own timeout, logging to
# $OUT/log.txt (with the results' JSON and the bench report beside it). PARTS="learning sac_cheetah" runs only
# those parts. Locally: OUT=/tmp/out WHEELS=dir-of-cp311-wheels bash scripts/bench/device_run.sh
# The wheels (.whl/ is git-ignored through .git/info/exclude; the device image's python is 3.12):
#   for p in brax==0.14.2 playground==0.2.0 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-mjx==3.17.0 gymnax==1.0.1 \
#       flashbax==0.1.3 tensorboardX==2.6.5 ml_collections==1.1.0 trimesh==5.2.0 glfw==2.11.0 PyOpenGL==3.1.10 \
#       jaxopt==0.8.5 mediapy==1.2.7 gymnasium==1.3.0; do pip download -q --no-deps --only-binary=:all: \
#       --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform any -d .whl $p; done
# (30 MB; mujoco-studio and warp-lang are not needed). Then: device run with carry [".whl"].
set -u
OUT=${OUT:-/tmp/rlx_device_out}
mkdir -p "$OUT"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1 RLX_COMPILE_CACHE_DIR=/tmp/rlx_jax_cache
WHEELS=${WHEELS:-.whl}
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nproc; } 2>&1 | tee -a "$LOG"
python3 - <<'PY' 2>&1 | grep -v -E "warp|settotalmass" | tee -a "$LOG"
import importlib, jax
print("jax", jax.__version__, jax.default_backend(), jax.devices())
for name in ("jaxlib", "flax", "optax", "chex", "orbax.checkpoint", "brax", "mujoco", "gymnax", "flashbax", "numpy"):
    print(name, getattr(importlib.import_module(name), "__version__", "?"))
import rlx.cli  # noqa: F401
from rlx.envs import make
for spec in ("playground/CartpoleBalance", "playground/CheetahRun", "gymnax/Pendulum-v1"):
    make(spec)
print("PROBE OK")
PY
grep -q "PROBE OK" "$LOG" || exit 3

PARTS=${PARTS:-ppo_throughput sac_cheetah learning precision sweep}
part() {  # part NAME SECONDS COMMAND...: one measurement under its own timeout, if PARTS names it
  local name=$1 seconds=$2
  shift 2
  [[ " $PARTS " == *" $name "* ]] || return 0
  echo "=== $name (limit ${seconds}s) $(date -u +%T)" | tee -a "$LOG"
  timeout "$seconds" "$@" 2>&1 | grep -v -E "Failed to import (warp|mujoco_warp)|settotalmass|^$" | tee -a "$LOG"
  echo "=== $name rc=${PIPESTATUS[0]} $(date -u +%T)" | tee -a "$LOG"
}
part ppo_throughput 140 python3 scripts/bench_throughput.py --env playground/CartpoleBalance \
  --config configs/ppo_playground_dmc.yaml --num-envs 2048 8192 --json "$OUT/ppo_throughput.json"
part learning 250 python3 -c "import sys; from rlx.cli import main; sys.exit(main(sys.argv[1:]))" \
  bench scripts/bench/gpu_lease.yaml --out /tmp/rlx_bench --quiet
cp /tmp/rlx_bench/report.md "$OUT/bench_report.md" 2>/dev/null
cp /tmp/rlx_bench/*/entry.json "$OUT/bench_entry.json" 2>/dev/null
part sac_cheetah 110 python3 scripts/bench_precision.py --env playground/CheetahRun --num-envs 128 --utd-ratio 0.0625 \
  --batch-size 512 --width 256 --dtype float32 --iterations ${SAC_ITERATIONS:-300} --repeats 2
part precision 90 python3 scripts/bench_precision.py --num-envs 128 --utd-ratio 0.0625 --batch-size 512 \
  --width 256 --width 1024 --width 2048 --iterations 300
part sweep 70 python3 scripts/bench_sweep.py --config configs/ppo_cartpole.yaml --seeds 16 --steps 65536 \
  --json "$OUT/sweep.json"
echo "=== done $(date -u +%T)" | tee -a "$LOG"
