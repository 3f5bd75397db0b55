# Shared helpers of the benchmarks in bench/*/run (sourced, not run). Each benchmark gets a private
# temporary HOME (so its `kiln init`, fleet CA, local agent and state never touch anyone else's),
# starts what it needs on 127.0.0.1 only, and stops exactly the processes it started, by pid.
# Results are printed as Markdown table rows:
#   | benchmark | kiln (median) | alternative (median) | ratio | target | met |
# shellcheck shell=bash disable=SC2034 # the variables set here are used by the scripts that source it
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
# SMOKE=1: CI's smoke mode. One run of everything at tiny sizes (each script picks its own with
# `smoke`), still checking every output, so the scripts cannot rot; the figures mean nothing.
SMOKE=${SMOKE:-}
[[ $SMOKE == 0 ]] && SMOKE=
export SMOKE
RUNS=${RUNS:-5}
[[ -n $SMOKE ]] && RUNS=1
# Prints $1 in smoke mode and $2 otherwise, e.g. FILES=${FILES:-$(smoke 20 10000)}.
smoke() { if [[ -n $SMOKE ]]; then echo "$1"; else echo "$2"; fi; }
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
SFTP_SERVER=${SFTP_SERVER:-/usr/lib/openssh/sftp-server}
export KILN_NO_BUILD=1 # bench/run builds the jars once; a benchmark never rebuilds them mid-run

say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
# seconds between two `now` values, 3 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# a / b with 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
# the ratio unrounded, for judging a target: 0.897 is not >= 0.9 even though it prints as 0.90
exact_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.6f", a / b }'; }
# yes/no: is value OP limit (OP: le or ge)
meets() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { print ((op == "le" ? v <= l : v >= l) ? "yes" : "no") }'; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# resident memory of a process in MiB (VmRSS, or VmHWM = peak)
rss_mib() { awk -v k="${2:-VmRSS}:" '$1 == k { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")
# mktemp makes it 0700; root's local fleet would then move to /var/lib/kiln-fleet (LocalProvider:
# the build user must reach the instances), out of this HOME and out of reach of the cleanup.
chmod 0711 "$WORK"
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_STATE_HOME=$WORK/home/.local/state
mkdir -p "$HOME"
AGENT_DIR=$XDG_STATE_HOME/kiln/local-agent
KEY=$XDG_CONFIG_HOME/kiln/id_ed25519
ME=$(id -un)
SSHD_PID=
CLEANUP_HOOKS=()
cleanup() {
  local h
  for h in "${CLEANUP_HOOKS[@]}"; do "$h" || true; done
  "$ROOT/bin/kiln" down --local --grace 5s >/dev/null 2>&1 || true
  if [[ -n $SSHD_PID ]]; then kill "$SSHD_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

kiln() { "$ROOT/bin/kiln" "$@"; }

# Starts the local agent (kiln up --local) serving $1 (default: its own outputs directory) with its
# SSH server on a free port; sets AGENT_PID, AGENT_SSH_PORT and KILN_KNOWN.
start_agent() {
  local serve=()
  [[ -n ${1:-} ]] && serve=(--serve "$1")
  kiln up --local "${serve[@]}" --ssh-port 0 >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err" >&2; return 1; }
  AGENT_PID=$(cat "$AGENT_DIR/agent.pid")
  prime_cli_archives ""
  kiln ssh-config >"$WORK/kiln_ssh_config" 2>/dev/null
  AGENT_SSH_PORT=$(sed -n 's/^  Port //p' "$WORK/kiln_ssh_config")
  KILN_KNOWN=$XDG_CONFIG_HOME/kiln/known_hosts
}

# bin/kiln dumps the CLI's class-data archives (one for most commands, one for `build` and `logs`)
# in the background after the first command of each kind that talks to an agent: both are made
# here, and waited for, before anything is timed, so no benchmark shares the cores with a dump or
# times a command without its archive. Usage: prime_cli_archives [AGENT] (default: the local agent;
# with AGENT only `status`, against it).
prime_cli_archives() {
  local agent=() tree=$WORK/prime-tree i
  [[ -n ${1:-} ]] && agent=(--agent "$1")
  kiln status "${agent[@]}" >/dev/null 2>&1 || true
  if [[ -z ${1:-} ]]; then
    mkdir -p "$tree"
    [[ $(id -u) == 0 ]] && getent passwd kiln >/dev/null && chown kiln: "$tree"
    kiln build "$tree" -- true >/dev/null 2>&1 || true
  fi
  for ((i = 0; i < 600; i++)); do
    compgen -G "$ROOT/controller/target/kiln-*.jsa.lock" >/dev/null || return 0
    sleep 0.2
  done
  echo "the CLI's class-data dump did not finish in 120 s" >&2
}

# Starts OpenSSH's sshd on 127.0.0.1 with its own host key and config, accepting Kiln's key for the
# current user; internal-sftp by default (SFTP=server: the sftp-server program). Sets SSHD_PORT
# and SSHD_KNOWN. Needs root (privilege separation) and the user's key from `kiln init`.
start_sshd() {
  [[ -f $KEY ]] || kiln init >/dev/null 2>&1
  SSHD_PORT=$(free_port)
  mkdir -p "$WORK/sshd" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_ed25519"
  cp "$KEY.pub" "$WORK/sshd/authorized_keys"
  local subsystem=internal-sftp
  [[ ${SFTP:-} == server ]] && subsystem=$SFTP_SERVER
  cat >"$WORK/sshd/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $WORK/sshd/host_ed25519
AuthorizedKeysFile $WORK/sshd/authorized_keys
PidFile $WORK/sshd/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp $subsystem
CFG
  "$SSHD" -D -e -f "$WORK/sshd/sshd_config" 2>"$WORK/sshd/log" &
  SSHD_PID=$!
  SSHD_KNOWN=$WORK/sshd/known_hosts
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$WORK/sshd/host_ed25519.pub")" >"$SSHD_KNOWN"
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "sshd did not start:" >&2; cat "$WORK/sshd/log" >&2; return 1
}

# The ssh options both servers are reached with: same client, key and cipher (AES-GCM, which both
# offer; Kiln's own clients ask for it first). Usage: ssh_opts PORT KNOWN_HOSTS
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
ssh_opts() {
  printf '%s\n' -F none -o Port="$1" -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$2" -o Ciphers="$CIPHER"
}

machine() {
  printf 'machine: %s cores, %s, %s GiB RAM; %s; %s\n' "$(nproc)" \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
    "$(java -version 2>&1 | head -1)" "$(ssh -V 2>&1)"
  # Anything else running on the machine shows here; the figures are only as quiet as this is.
  printf 'load average at the start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}
