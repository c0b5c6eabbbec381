#!/usr/bin/env bash
# Set up a Jetson (Orin, JetPack 6) for the benchmark, then say what to change for a clean run.
#
#   bash scripts/setup_jetson.sh           check, install the rest (scripts/install.sh), advise
#   bash scripts/setup_jetson.sh --check   check and advise only: install nothing
#
# 1. Checks, each blocking: L4T (/etc/nv_tegra_release or the nvidia-l4t-core package), Python
#    >= 3.10, NVIDIA's torch and torchvision (installed, importable, a CUDA build that sees the GPU;
#    a CPU-only or other registry build is refused: pip must never be the one to install torch
#    here), and PYTORCH_CUDA_ALLOC_CONF without expandable_segments:True (it breaks PyTorch's
#    allocator on Tegra; the benchmark refuses to start with it).
# 2. scripts/install.sh installs the rest; it pins the installed torch and torchvision, and this
#    script checks afterwards that torch is still the same build.
# 3. The board: power mode (nvpmodel -q), clocks and fan (jetson_clocks --show, or sudo -n),
#    desktop, free memory and swap (/proc/meminfo), each "ok:" or "change:" with the command.
#
# Exit code 0: ready (the "change:" lines are advice); 2: a blocking problem, one line on stderr
# that names it and what to do.
# Overrides (tests, unusual setups): PYTHON (default python3); SAV_JETSON_ROOT, a prefix for the
# /etc and /proc files read (default: none); SAV_JETSON_INSTALL, the installer (default
# scripts/install.sh, run with bash); the commands nvpmodel, jetson_clocks, dpkg-query, systemctl
# and sudo are found on PATH.
set -uo pipefail
NAME=setup_jetson.sh
ROOT=${SAV_JETSON_ROOT:-}
PY=${PYTHON:-python3}
INSTALLER=${SAV_JETSON_INSTALL:-scripts/install.sh}
TORCH_DOCS=https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "$NAME: unknown argument $1 (usage: $NAME [--check])" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.." || exit 2

block() { # a blocking problem: one line, exit code 2
  echo "$NAME: $*" >&2
  exit 2
}

# --- L4T / JetPack ----------------------------------------------------------------------------
release_file="$ROOT/etc/nv_tegra_release"
core=$(dpkg-query -W -f='${Version}' nvidia-l4t-core 2>/dev/null) || core=""
if [[ ! -e $release_file && -z $core ]]; then
  block "this is not a Jetson (no $release_file, no nvidia-l4t-core package); on other machines install with: bash scripts/install.sh"
fi
l4t="" major=""
first=$(head -n 1 "$release_file" 2>/dev/null) || first=""
if [[ $first =~ R([0-9]+)\ \(release\),\ REVISION:\ ([0-9.]+) ]]; then
  major=${BASH_REMATCH[1]} l4t="R${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
elif [[ $core =~ ^([0-9]+)\.([0-9.]+) ]]; then
  major=${BASH_REMATCH[1]} l4t="R${BASH_REMATCH[1]}.${BASH_REMATCH[2]%.}"
fi
case "$major" in
  32) jetpack=4 ;; 34 | 35) jetpack=5 ;; 36) jetpack=6 ;; 38) jetpack=7 ;; *) jetpack="" ;;
esac
board=$(tr -d '\0' 2>/dev/null <"$ROOT/proc/device-tree/model") || board=""
echo "board: ${board:-a Jetson (model unknown)}; L4T ${l4t:-unknown}${jetpack:+ (JetPack $jetpack)}${core:+; nvidia-l4t-core $core}"
if [[ -n $major && $major -lt 35 ]]; then
  block "L4T $l4t (JetPack ${jetpack:-4}) is too old for this benchmark (its Python and torch are); flash JetPack 6"
fi
wheels="NVIDIA's torch and torchvision wheels for JetPack ${jetpack:-6} ($TORCH_DOCS)"

# --- Python -----------------------------------------------------------------------------------
py_path=$(command -v "$PY") || block "no Python interpreter '$PY' here: install python3 (JetPack 6 has 3.10) or set PYTHON"
py_version=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || block "$py_path does not run: set PYTHON to a working python3"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  block "Python $py_version ($py_path) is too old: the benchmark needs 3.10 or later (JetPack 6's python3 is 3.10; NVIDIA's torch for JetPack 5 is for Python 3.8)"
fi
echo "python: $py_version ($py_path)"

# --- NVIDIA's torch and torchvision -----------------------------------------------------------
torch_probe() { # one line: missing | broken|reason | ok|version|cuda|gpu (1/0)|device|torchvision version or missing/broken: reason
  "$PY" - 2>/dev/null <<'EOF'
import sys

def one_line(exc):
    return f"{type(exc).__name__}: {exc}".splitlines()[0].replace("|", "/")

try:
    import torch
except ModuleNotFoundError as exc:
    print("missing" if exc.name == "torch" else f"broken|{one_line(exc)}")
    sys.exit()
except BaseException as exc:
    print(f"broken|{one_line(exc)}")
    sys.exit()
try:
    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if gpu else ""
except Exception:
    gpu, device = False, ""
try:
    import torchvision
    vision = torchvision.__version__
except ModuleNotFoundError:
    vision = "missing"
except BaseException as exc:
    vision = f"broken: {one_line(exc)}"
print("|".join(["ok", torch.__version__, torch.version.cuda or "", "1" if gpu else "0", device.replace("|", "/"), vision]))
EOF
}
probe=$(torch_probe) || block "importing torch made $py_path fail (exit code $?): reinstall $wheels"
IFS='|' read -r state torch_version cuda gpu device vision <<<"$probe"
case "$state" in
  missing) block "torch is not installed for $py_path: install $wheels, then run this again (the package registry's torch has no Jetson GPU support, so pip must not install it)" ;;
  broken) block "torch cannot be imported ($torch_version): JetPack's CUDA/cuDNN libraries may be missing (sudo apt install nvidia-jetpack) or the wheel is for another JetPack; install $wheels" ;;
  ok) ;;
  *) block "the torch check printed nothing useful ('$probe'): check that $py_path runs" ;;
esac
if [[ -z $cuda ]]; then
  block "torch $torch_version is a CPU-only build (the package registry's), not NVIDIA's: $PY -m pip uninstall torch torchvision, then install $wheels"
fi
if [[ $gpu != 1 ]]; then
  block "torch $torch_version (CUDA $cuda) sees no GPU: it is not a build for Jetson (the registry's aarch64 wheels are not) or this user may not use the GPU (groups video, render); install $wheels"
fi
case "$vision" in
  missing) block "torchvision is not installed: install NVIDIA's torchvision wheel built for torch $torch_version (the same JetPack); the registry's would replace torch" ;;
  broken*) block "torchvision cannot be imported (${vision#broken: }): install NVIDIA's torchvision wheel built for torch $torch_version" ;;
esac
echo "torch: $torch_version (CUDA $cuda, GPU: ${device:-yes}); torchvision: $vision"

allocator=${PYTORCH_CUDA_ALLOC_CONF:-}
squeezed=${allocator// /}
if [[ ${squeezed,,} == *expandable_segments:true* ]]; then
  block "PYTORCH_CUDA_ALLOC_CONF=$allocator: expandable_segments:True breaks PyTorch's allocator on Jetson and the benchmark refuses to start with it; unset it (or set expandable_segments:False), also where your shell sets it, then run this again"
fi

# --- install the rest (never torch) -----------------------------------------------------------
if ((check_only)); then
  echo "install: skipped (--check)"
else
  echo "install: $INSTALLER (it keeps torch $torch_version and torchvision $vision as they are)"
  PYTHON="$py_path" bash "$INSTALLER" || block "$INSTALLER failed (exit code $?): see its output above"
  after=$(torch_probe) || after="failed|python exited with $?"
  if [[ $after != "$probe" ]]; then
    IFS='|' read -r _ after_version after_cuda after_gpu _ <<<"$after"
    block "the install changed torch ($torch_version, CUDA $cuda -> ${after_version:-?}, CUDA ${after_cuda:-none}, GPU ${after_gpu:-?}): reinstall $wheels, and report this"
  fi
fi

# --- the board, for a clean benchmark ---------------------------------------------------------
changes=0
ok() { echo "  ok: $*"; }
change() {
  echo "  change: $*"
  changes=$((changes + 1))
}
echo "for a clean benchmark:"

if command -v nvpmodel >/dev/null; then
  query=$(nvpmodel -q 2>&1) || true
  mode=$(sed -n 's/^NV Power Mode: *//p' <<<"$query" | head -n 1)
  echo "  nvpmodel -q: $(tr '\n' ' ' <<<"$query" | sed 's/ *$//')"
  maxn=$(sed -n 's/.*POWER_MODEL *ID=\([0-9]*\) *NAME=\(MAXN[A-Z_]*\).*/\1 \2/p' "$ROOT/etc/nvpmodel.conf" 2>/dev/null | tail -n 1)
  if [[ $mode == MAXN* ]]; then
    ok "power mode $mode"
  elif [[ -n $maxn ]]; then
    change "power mode ${mode:-unknown}: sudo nvpmodel -m ${maxn%% *} for ${maxn#* } (it may ask for a reboot)"
  else
    change "power mode ${mode:-unknown}: set the board's highest with sudo nvpmodel -m ID (nvpmodel -p --verbose lists them)"
  fi
else
  change "nvpmodel not found: the power mode is unknown (it comes with JetPack)"
fi

clocks=""
if command -v jetson_clocks >/dev/null; then
  clocks=$(jetson_clocks --show 2>/dev/null) || clocks=$(sudo -n jetson_clocks --show 2>/dev/null) || clocks=""
fi
if [[ -z $clocks ]]; then
  change "clocks unknown: jetson_clocks --show needs root here; see them with: sudo jetson_clocks --show"
else
  echo "  jetson_clocks --show:"
  # shellcheck disable=SC2001  # (a prefix on every line)
  sed 's/^/    /' <<<"$clocks"
  if [[ $clocks =~ GPU\ MinFreq=([0-9]+)\ MaxFreq=([0-9]+)\ CurrentFreq=([0-9]+) ]]; then
    low=$((BASH_REMATCH[1] / 1000000)) high=$((BASH_REMATCH[2] / 1000000)) now=$((BASH_REMATCH[3] / 1000000))
    if ((low == high)); then
      ok "clocks locked (GPU at $high MHz)"
    else
      change "clocks not locked (GPU $low-$high MHz, now $now): sudo jetson_clocks before the run (a reboot undoes it)"
    fi
  fi
  if [[ $clocks =~ FAN\ Dynamic\ Speed\ control=active\ ([a-z0-9_]*pwm)=([0-9]+) ]]; then
    change "fan under dynamic control (pwm ${BASH_REMATCH[2]}/255): sudo jetson_clocks --fan runs it at full speed, so heat does not throttle the clocks mid-run"
  elif [[ $clocks =~ FAN.*pwm=255 ]]; then
    ok "fan at full speed"
  fi
fi

if command -v systemctl >/dev/null; then
  target=$(systemctl get-default 2>/dev/null) || target=""
  if [[ $target == graphical.target ]]; then
    change "a desktop starts at boot (it takes RAM the GPU shares, and GPU time): sudo systemctl set-default multi-user.target && sudo reboot (undo: set-default graphical.target)"
  elif [[ -n $target ]]; then
    ok "no desktop ($target)"
  fi
fi

kib() { sed -n "s/^$1: *\([0-9]*\) kB.*/\1/p" "$ROOT/proc/meminfo" 2>/dev/null; }
total=$(kib MemTotal) available=$(kib MemAvailable) swap=$(kib SwapTotal) swap_free=$(kib SwapFree)
gib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1048576 }'; }
if [[ -n $total && -n $available ]]; then
  echo "  memory: $(gib "$available") GiB available of $(gib "$total") GiB (CPU and GPU share it); swap $(gib "${swap:-0}") GiB, $(gib $((${swap:-0} - ${swap_free:-0}))) GiB used"
  if ((available * 100 < total * 85)); then
    change "only $((available * 100 / total))% of the RAM is available: stop other programs (and the desktop) before the run"
  else
    ok "$((available * 100 / total))% of the RAM available"
  fi
  if ((${swap:-0} > 0)); then
    change "swap is on ($(gib "$swap") GiB; zram on JetPack): a model that does not fit swaps and its timings mean little; watch SwapFree, or turn zram off: sudo systemctl disable nvzramconfig && sudo reboot"
  fi
else
  change "free memory unknown: cannot read $ROOT/proc/meminfo"
fi
ok "PYTORCH_CUDA_ALLOC_CONF ${allocator:+=$allocator }has no expandable_segments:True"

echo "ready: $changes thing(s) to change above for a clean benchmark; next: bash scripts/download_checkpoints.sh, then bash scripts/overnight.sh start results/night -- --split_dir DIR --models ..."
