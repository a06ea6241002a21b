# Sourced by the scripts: make sure .venv exists with the requirements installed, then use it.
# Only Python 3.11 is needed on a fresh machine; torch/torchvision come from pip (see README).
# REQUIREMENTS=requirements-dev.txt (set by test.sh) adds the development tools: pytest, ruff.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3
REQUIREMENTS="${REQUIREMENTS:-requirements.txt}"
STAMP=.venv/.requirements.installed
wanted_requirements() {
  cat requirements.txt
  if [ "$REQUIREMENTS" != requirements.txt ]; then cat "$REQUIREMENTS"; fi
}
# The stamp holds what was installed; a venv set up for the tests starts with the runtime list,
# so it also serves the scripts.
if [ ! -x .venv/bin/python ] || [ ! -f "$STAMP" ] \
    || ! head -c "$(wanted_requirements | wc -c)" "$STAMP" | cmp -s - <(wanted_requirements); then
  echo "[env] setting up .venv from $REQUIREMENTS (first run takes a few minutes)"
  [ -x .venv/bin/python ] || "$PYTHON_BIN" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQUIREMENTS"
  wanted_requirements > "$STAMP"
fi
PY="$REPO_ROOT/.venv/bin/python"
export PYTHONUNBUFFERED=1

DATA_ROOT="${DATA_ROOT:-data/synthetic}"
PROFILE="${PROFILE:-reference}"
NUM_GPUS="${NUM_GPUS:-1}"
CKPT="${CKPT:-ckpt}"

# One process per GPU under torchrun (DDP) when NUM_GPUS > 1 or NNODES > 1; set
# LAUNCHER=dataparallel for the original scripts' single-process DataParallel (one machine only).
# The global batch (--batch_size, 48 for the paper) is the same whatever the number of processes:
# each gets its share.
# Several machines (docs/launch.md): the same command on every node with NNODES (number of nodes)
# and either RDZV_ENDPOINT (host:port on one of them: torchrun's c10d rendezvous, which numbers
# the nodes itself; RDZV_ID names the job) or NODE_RANK (this node's, 0 on the one that logs and
# writes the run) with MASTER_ADDR / MASTER_PORT (node 0's address and a free port: torchrun's
# static rendezvous). The run folder must be on a disk that every node shares.
run_main() {
  local nnodes="${NNODES:-1}"
  if [ "$nnodes" -gt 1 ] || { [ "$NUM_GPUS" -gt 1 ] && [ "${LAUNCHER:-torchrun}" = torchrun ]; }; then
    local where=(--standalone)
    if [ "$nnodes" -gt 1 ] && [ -n "${RDZV_ENDPOINT:-}" ]; then
      where=(--nnodes "$nnodes" --rdzv_backend c10d --rdzv_endpoint "$RDZV_ENDPOINT"
             --rdzv_id "${RDZV_ID:-ccol}")
    elif [ "$nnodes" -gt 1 ]; then
      where=(--nnodes "$nnodes"
             --node_rank "${NODE_RANK:?NNODES=$nnodes: set NODE_RANK on each node (or RDZV_ENDPOINT)}"
             --master_addr "${MASTER_ADDR:?NNODES=$nnodes: set MASTER_ADDR to the address of node 0}"
             --master_port "${MASTER_PORT:-29500}")
    fi
    "$REPO_ROOT/.venv/bin/torchrun" "${where[@]}" --nproc_per_node "$NUM_GPUS" main.py "$@"
  else
    "$PY" main.py --num_gpus "$NUM_GPUS" "$@"
  fi
}
