#!/usr/bin/env bash
# One-shot GPU check for a session that is lent a CUDA device (no pip installs; PYTHONPATH=src).
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (about 3-6 minutes on one H100; at most ~9.8 minutes)
# 0. pre-flight: what the GPU machine has (torch, triton, pytest, torchvision, yaml, tqdm, PIL),
# 0b. `arlif selftest --device cuda --quick`, what a user runs first: every neuron x surrogate in float32 and a
#    rotation of them in bfloat16 and float16, against the float64 reference, and a compiled training step,
# 1. the Triton kernels against the reference on CUDA (parity of spikes, states, all gradients), and the
#    memory tiers' gradients against default's on CUDA,
# 2. `arlif bench` on cuda, T=8, float32 and bfloat16, with achieved bandwidth (and 4 vs 8 warps on a big layer),
# 3. peak training memory and step time of spiking ResNet-18 (T=8, batch 128, AMP) with the reference vs fused
#    neurons, for each memory tier (default, compact, minimal),
# writing everything under OUT_DIR (default $OUT if set, else benchmarks/gpu_out). The timeouts add up to
# 590 s (30 + 140 + 160 + 2*40 + 45 + 35 + 100), under the device tool's 600 s per command, so whatever
# finished comes back even if a step hangs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/gpu_out}}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
PY="${PYTHON:-$(command -v python || command -v python3)}"
status=0

echo "== 0. environment ==" | tee "$OUT_DIR/env.txt"
timeout 30 "$PY" - <<'PY' 2>&1 | tee -a "$OUT_DIR/env.txt"
import importlib
import torch, triton
print("torch", torch.__version__, "triton", triton.__version__, "cuda", torch.version.cuda)
try:
    print("device", torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0))
except Exception as exc:  # still list the modules below
    print(f"device NONE ({exc})")
for name in ("pytest", "torchvision", "yaml", "tqdm", "PIL", "sklearn"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', 'ok')}")
    except Exception as exc:  # a missing module limits what the steps below can run
        print(f"{name} MISSING ({exc})")
PY

echo "== 0b. arlif selftest --device cuda --quick ==" | tee "$OUT_DIR/selftest.txt"
# --quick: a fresh machine compiles each Triton kernel specialisation on first use (neuron x surrogate x dtype x
# state flags; ~0.3-1 s each): the quick run launches ~220 of them, the full run ~350, and the quick run traces
# the compiled step with aot_eager instead of inductor. Its per-neuron progress lines show where the time went.
timeout 140 "$PY" -m arlif selftest --device cuda --quick --json "$OUT_DIR/selftest.json" \
  2>&1 | tee -a "$OUT_DIR/selftest.txt" || status=1

echo "== 1. Triton parity on CUDA ==" | tee "$OUT_DIR/parity.txt"
# the whole log is kept; --maxfail stops a systematic failure from eating the time budget
timeout 160 "$PY" -m pytest -q -p no:cacheprovider --maxfail=5 -rf tests/test_fused_cuda.py \
  "tests/test_memory.py::test_tiers_on_cuda_give_the_gradients_of_default" \
  > "$OUT_DIR/parity_full.txt" 2>&1 || status=1
tail -40 "$OUT_DIR/parity_full.txt" | tee -a "$OUT_DIR/parity.txt"

echo "== 2. arlif bench on cuda, T=8 ==" | tee "$OUT_DIR/bench.txt"
for dtype in float32 bfloat16; do
  timeout 40 "$PY" -m arlif bench --device cuda --backends torch,triton --T 8 --shape 32,64,16,16 \
    --dtype "$dtype" --repeats 20 --warmup 5 --json "$OUT_DIR/bench_cuda_${dtype}.json" \
    --markdown "$OUT_DIR/bench_cuda_${dtype}.md" 2>&1 | tee -a "$OUT_DIR/bench.txt" || status=1
done
# a larger layer (ResNet-18 stem-sized, batch 128) where bandwidth matters
timeout 45 "$PY" -m arlif bench --device cuda --backends torch,triton --neurons arlif,lif --T 8 \
  --shape 128,64,32,32 --repeats 10 --warmup 3 --json "$OUT_DIR/bench_cuda_large.json" \
  --markdown "$OUT_DIR/bench_cuda_large.md" 2>&1 | tee -a "$OUT_DIR/bench.txt" || status=1
# the same large layer with 8 warps per program (fewer registers per thread in the AR-LIF backward)
ARLIF_TRITON_NUM_WARPS=8 timeout 35 "$PY" -m arlif bench --device cuda --backends triton --neurons arlif,lif --T 8 \
  --shape 128,64,32,32 --repeats 10 --warmup 3 --json "$OUT_DIR/bench_cuda_large_warps8.json" \
  2>&1 | tee -a "$OUT_DIR/bench.txt" || status=1
echo "peak DRAM bandwidth for comparison: H100 SXM ~3350 GB/s, H100 PCIe ~2000 GB/s, H200 ~4800 GB/s" \
  | tee -a "$OUT_DIR/bench.txt"

echo "== 3. spiking ResNet-18 training step, T=8, batch 128: reference vs fused ==" | tee "$OUT_DIR/model_memory.txt"
timeout 100 "$PY" benchmarks/model_memory.py --device cuda --batch 128 --T 8 --amp --repeats 3 \
  --json "$OUT_DIR/model_memory.json" 2>&1 | tee -a "$OUT_DIR/model_memory.txt" || status=1
exit $status
