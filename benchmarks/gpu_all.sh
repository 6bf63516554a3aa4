#!/usr/bin/env bash
# Everything that needs a GPU, in one run, so the GPU numbers of docs/benchmarks.md come from one machine:
# the GPU tests, then every benchmark on the device. Writes one file per step to $OUT (default
# benchmarks/results-<date>) and a summary of exit codes; a step that fails does not stop the others.
#
#   bash benchmarks/gpu_all.sh            # about 8-10 minutes on one modern GPU (quick sizes)
#   FULL=1 bash benchmarks/gpu_all.sh     # the full sizes (longer: whole-grid MIG, k = 5000 NLL)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results-$(date +%Y%m%d-%H%M)}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export VAERAY_DATA=${VAERAY_DATA:-$HOME/.cache/vaeray/data}
Q=--quick; [ -n "${FULL:-}" ] && Q=
step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.md" 2> "$OUT/$name.err"
  echo "$name: exit $? in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
}
{ nvidia-smi; python -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; uptime; } > "$OUT/machine.txt" 2>&1
python -c "from vaeray.data.dsprites import DSprites; DSprites()" > /dev/null  # the packed cache, once per machine
step gpu_tests 120 python -m pytest -q -p no:cacheprovider tests/core/test_gpu.py tests/core/test_perf_options.py
step train 240 python benchmarks/bench_train.py --device cuda --batch 64 256 1024 --steps 300 --rounds 2 --threads 4 --options
step packing 120 python benchmarks/bench_packing.py $Q --batch 64 --trials 1 2 4 8
step eval 120 python benchmarks/bench_eval.py $Q --device cuda --batch-size 16384
step memory 60 python benchmarks/bench_memory.py --quick --device cuda --trials 1 4 --batch 256
step startup 60 python benchmarks/bench_startup.py --quick
step ray 120 python benchmarks/bench_ray.py --quick
cat "$OUT/summary.txt"
