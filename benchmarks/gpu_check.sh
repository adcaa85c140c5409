#!/usr/bin/env bash
# GPU checks of edvr_lib in one go (< 10 min on one modern GPU). Run from anywhere:
#
#     bash benchmarks/gpu_check.sh            # results in $OUT if set, else outputs/gpu_check/
#
# Steps (each logged to its own file in the results folder; a failed step does not stop the next ones):
#   nvidia-smi         the GPU, driver, memory (nvidia-smi.txt at the start, nvidia-smi-end.txt at the end)
#   env                `edvr env --json` (versions, devices, DCN check)
#   pytest-gpu         `pytest -m gpu`: CUDA = CPU with both DCN backends, channels_last = NCHW, bf16 close to fp32,
#                      AMP training (bf16, fp16) of tests/train/test_loop.py
#   train-bf16         `edvr train` of configs/train_EDVR_tiny_embedded.yml, 200 iterations in bf16 autocast: the loss
#                      must go down; validation PSNR against bicubic is reported (200 iterations may not beat it)
#   speed-bf16         `benchmarks.edvr_speed --device cuda --amp bf16`: forward / training step against the reference
#   speed-fp32         the same in fp32 with TF32 off (NVIDIA_TF32_OVERRIDE=0): outputs must match within 1e-4
#   train-speed        `benchmarks.train_speed --device cuda`: end-to-end `edvr train` against BasicSR's train.py
#   speed-bf16-nhwc    edvr_speed in bf16 with channels_last activations (not the CUDA default yet)
#   speed-bf16-fast    edvr_speed in bf16 with the `fast` DCN backend (not the CUDA default yet)
# The reference (BasicSR 1.4.2) is used where .reference_venv/ exists (`python -m tools.reference.env`); it is
# never installed here (GPU machines may have no package index). Nothing in docs/ is rewritten.
#
# Exit status: 0 every step passed, 1 a step failed (summary.txt says which), 3 no usable CUDA device.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESULTS="${OUT:-outputs/gpu_check}"
BUDGET="${GPU_CHECK_BUDGET:-570}"  # seconds for all steps together; later steps are skipped past it
mkdir -p "$RESULTS"
SUMMARY="$RESULTS/summary.txt"
: > "$SUMMARY"
FAILED=0

no_cuda() {
    echo "gpu_check: NO CUDA DEVICE: $1" | tee -a "$SUMMARY" >&2
    echo "gpu_check: this script only runs on a machine with an NVIDIA GPU and its driver; nothing was measured." >&2
    exit 3
}

# ---- fail fast without a GPU (before creating any environment)
command -v nvidia-smi >/dev/null 2>&1 || no_cuda "nvidia-smi not found (no NVIDIA driver on this machine)"
nvidia-smi > "$RESULTS/nvidia-smi.txt" 2>&1 || no_cuda "nvidia-smi failed: $(tail -1 "$RESULTS/nvidia-smi.txt")"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv \
    > "$RESULTS/gpu.csv" 2>&1 || true

# ---- the project environment
if [ ! -x .venv/bin/python ]; then
    echo "gpu_check: .venv missing, running make install (log: $RESULTS/make-install.log)"
    make install > "$RESULTS/make-install.log" 2>&1 || { echo "gpu_check: make install failed, see $RESULTS/make-install.log" >&2; exit 1; }
fi
PY=.venv/bin/python
EDVR=.venv/bin/edvr
"$PY" - > "$RESULTS/cuda.txt" 2>&1 <<'EOF' || no_cuda "PyTorch cannot use the GPU: $(tail -1 "$RESULTS/cuda.txt")"
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no CUDA device"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}")
EOF
cat "$RESULTS/cuda.txt"
START=$SECONDS

# step NAME TIMEOUT_S COMMAND...: run with a timeout (capped by what is left of the budget), log, record the status
step() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - (SECONDS - START)))
    if [ "$left" -lt 30 ]; then
        printf '%-16s SKIP  (time budget of %ss used up)\n' "$name" "$BUDGET" | tee -a "$SUMMARY"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most ${limit}s): $*"
    local t0=$SECONDS rc
    timeout --signal=TERM --kill-after=15 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    rc=$?
    local status=PASS note=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=FAIL; note="timed out after ${limit}s"
    elif [ $rc -ne 0 ]; then status=FAIL; note="exit $rc"; fi
    [ $status = FAIL ] && FAILED=1
    printf '%-16s %s  %4ss  %s (log: %s.log)\n' "$name" "$status" "$((SECONDS - t0))" "$note" "$name" | tee -a "$SUMMARY"
    tail -n 4 "$RESULTS/$name.log" | sed 's/^/    /'
}

step env 120 "$EDVR" env --json

step pytest-gpu 240 env EDVR_SMOKE=1 "$PY" -m pytest tests -m gpu -v -rs -p no:cacheprovider \
    --junitxml="$RESULTS/pytest-gpu.xml"

# short AMP training run on the embedded data, then its checks
RUN=/tmp/gpu_check_run
rm -rf "$RUN"
train_and_check() {
    "$EDVR" prepare-embedded || return 1
    "$EDVR" train --config configs/train_EDVR_tiny_embedded.yml --output "$RUN" --device cuda \
        --set train.total_iter=200 --set train.amp=bf16 --set val.val_freq=200 --set logger.print_freq=10 \
        --set logger.save_checkpoint_freq=200 || return 1
    cp "$RUN/train_log.jsonl" "$RUN/options.yml" "$RESULTS/" 2>/dev/null
    "$PY" - "$RUN/train_log.jsonl" "$RESULTS/train-bf16-check.json" <<'EOF'
import json, sys
entries = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
losses = [e["loss"] for e in entries if "loss" in e]
rates = [e["it_per_s"] for e in entries if e.get("it_per_s")]
val = [e for e in entries if "val_psnr" in e]
first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
check = {"logged_iterations": [e["iter"] for e in entries], "loss_first3_mean": first, "loss_last3_mean": last,
         "loss_decreased": last < first, "it_per_s_last": rates[-1] if rates else None,
         "val_psnr": val[-1]["val_psnr"] if val else None, "bicubic_psnr": val[-1]["bicubic_psnr"] if val else None}
check["beats_bicubic"] = None if not val else check["val_psnr"] > check["bicubic_psnr"]
json.dump(check, open(sys.argv[2], "w"), indent=1)
print(f"loss {first:.4g} -> {last:.4g} (mean of the first / last 3 logged iterations): "
      + ("decreased" if check["loss_decreased"] else "DID NOT DECREASE"))
print(f"training speed {check['it_per_s_last']} it/s (bf16, tiny model, batch 8, GT 64)")
if val:
    print(f"validation PSNR {check['val_psnr']:.2f} dB against bicubic {check['bicubic_psnr']:.2f} dB: "
          + ("beats bicubic" if check["beats_bicubic"] else "below bicubic (informative only after 200 iterations)"))
sys.exit(0 if check["loss_decreased"] else 1)
EOF
}
export -f train_and_check
export PY EDVR RUN RESULTS
step train-bf16 240 bash -c train_and_check

step speed-bf16 150 "$PY" -m benchmarks.edvr_speed --device cuda --amp bf16 --no-write
step speed-fp32 150 env NVIDIA_TF32_OVERRIDE=0 "$PY" -m benchmarks.edvr_speed --device cuda --amp none --no-write
step train-speed 240 "$PY" -m benchmarks.train_speed --device cuda --iters 30 --warmup 5 --no-write \
    --json "$RESULTS/train_speed_cuda.json"
cp -r outputs/train_speed/logs "$RESULTS/train_speed_logs" 2>/dev/null || true
step speed-bf16-nhwc 120 "$PY" -m benchmarks.edvr_speed --device cuda --amp bf16 --channels-last on --no-memory --no-write
step speed-bf16-fast 120 "$PY" -m benchmarks.edvr_speed --device cuda --amp bf16 --dcn-backend fast --no-memory --no-write

nvidia-smi > "$RESULTS/nvidia-smi-end.txt" 2>&1 || true
echo
echo "gpu_check: $(date '+%Y-%m-%d %H:%M'), $(head -1 "$RESULTS/cuda.txt"); results in $RESULTS"
cat "$SUMMARY"
exit $FAILED
