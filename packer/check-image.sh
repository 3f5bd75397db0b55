#!/usr/bin/env bash
# Checks, last in the build, that the image keeps its guarantees whatever extra_packages and the
# user's script (user_script) added; packer runs it as root after provision.sh
# (packer/kiln-agent.pkr.hcl). Each broken guarantee is one line naming it, then the build fails
# (exit 1) and packer registers no AMI:
#
#   the agent's unit       kiln-agent.service is the shipped file, enabled, not overridden
#   the boot backstop      kiln-boot-backstop and its unit are the shipped files, enabled
#   IMDS for root only     /etc/kiln/imds.nft is the shipped rule and loads, kiln-imds.service is
#                          the shipped unit and enabled, nobody but root has uid 0, and the build
#                          user `kiln` has only the groups build_user_groups names and no sudo rule
#   no system sshd on 22   ssh.service / ssh.socket disabled (system_sshd_port 0), or sshd on
#                          exactly system_sshd_port
#   no agent state         /var/lib/kiln empty, no SSH host keys (they would be every instance's)
#
# Environment (the template sets it; checksums are of the files in packer/ and systemd/):
#   SYSTEM_SSHD_PORT, BUILD_USER_GROUPS   as for provision.sh
#   SHA256_AGENT_UNIT, SHA256_BACKSTOP, SHA256_BACKSTOP_UNIT, SHA256_IMDS_RULE, SHA256_IMDS_UNIT
set -uo pipefail

SYSTEM_SSHD_PORT=${SYSTEM_SSHD_PORT:-0}
read -r -a BUILD_USER_GROUPS <<<"${BUILD_USER_GROUPS:-}"

failures=0
fail() {
  printf '[check-image] broken guarantee: %s: %s\n' "$1" "$2" >&2
  failures=$((failures + 1))
}

[[ $(id -u) == 0 ]] || { echo "[check-image] error: run as root (packer runs it with sudo)" >&2; exit 2; }
for v in SHA256_AGENT_UNIT SHA256_BACKSTOP SHA256_BACKSTOP_UNIT SHA256_IMDS_RULE SHA256_IMDS_UNIT; do
  [[ ${!v:-} =~ ^[0-9a-f]{64}$ ]] || { echo "[check-image] error: $v is not a SHA-256 (the template sets it)" >&2; exit 2; }
done

# A file installed by provision.sh: there, a regular file (not a link), root's, not writable by
# group or others, with the shipped content.
shipped() {
  local guarantee=$1 path=$2 sum=$3 mode=$4 actual
  if [[ -L $path || ! -f $path ]]; then
    fail "$guarantee" "$path is missing or not a regular file"
    return
  fi
  read -r actual _ < <(sha256sum "$path")
  [[ $actual == "$sum" ]] || fail "$guarantee" "$path was changed after provision.sh installed it"
  [[ $(stat -c '%u:%g %a' "$path") == "0:0 $mode" ]] \
    || fail "$guarantee" "$path is $(stat -c '%U:%G %a' "$path"), not root:root $mode"
}

# A unit enabled by provision.sh: `systemctl is-enabled` reads the unit files (no running systemd
# needed), so a disabled or masked unit says so.
enabled() {
  local guarantee=$1 unit=$2 state
  state=$(systemctl is-enabled "$unit" 2>/dev/null)
  [[ $state == enabled ]] || fail "$guarantee" "$unit is ${state:-not installed}, not enabled (systemctl enable $unit)"
}

# Drop-ins may tune a unit (a bigger heap, say), not replace what it runs or as whom.
not_overridden() {
  local guarantee=$1 unit=$2 d f
  for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    for f in "$d/$unit.d"/*.conf; do
      [[ -e $f ]] || continue
      if grep -Eq '^[[:space:]]*(ExecStart|ExecStartPre|User|Group|Type)[[:space:]]*=' "$f"; then
        fail "$guarantee" "$f changes what $unit runs or as whom (ExecStart, User, Group or Type)"
      fi
    done
  done
  for d in /usr/local/lib/systemd/system /run/systemd/system; do
    [[ -e $d/$unit ]] && fail "$guarantee" "$d/$unit shadows /etc/systemd/system/$unit"
  done
}

# ---- The agent's unit. ----
G="the agent's unit (kiln-agent.service)"
shipped "$G" /etc/systemd/system/kiln-agent.service "$SHA256_AGENT_UNIT" 644
enabled "$G" kiln-agent.service
not_overridden "$G" kiln-agent.service
for d in /opt/kiln /opt/kiln/bin /etc/kiln; do
  [[ -d $d && ! -L $d && $(stat -c '%u %a' "$d") == "0 755" ]] || fail "$G" "$d is not a root-owned directory with mode 755"
done
[[ -f /opt/kiln/kiln-agent.jar && $(stat -c '%u %a' /opt/kiln/kiln-agent.jar) == "0 644" ]] \
  || fail "$G" "/opt/kiln/kiln-agent.jar is missing or not root's with mode 644"
/usr/bin/java -version 2>&1 | grep -q 'version "17\.' \
  || fail "$G" "/usr/bin/java is not Java 17, which the unit runs: $(/usr/bin/java -version 2>&1 | head -1)"

# ---- The boot backstop. ----
G="the boot backstop (kiln-boot-backstop.service)"
shipped "$G" /opt/kiln/bin/kiln-boot-backstop "$SHA256_BACKSTOP" 755
shipped "$G" /etc/systemd/system/kiln-boot-backstop.service "$SHA256_BACKSTOP_UNIT" 644
enabled "$G" kiln-boot-backstop.service
not_overridden "$G" kiln-boot-backstop.service

# ---- Only root reaches IMDS. ----
G="IMDS for root only (kiln-imds.service, /etc/kiln/imds.nft)"
shipped "$G" /etc/kiln/imds.nft "$SHA256_IMDS_RULE" 644
shipped "$G" /etc/systemd/system/kiln-imds.service "$SHA256_IMDS_UNIT" 644
enabled "$G" kiln-imds.service
not_overridden "$G" kiln-imds.service
if [[ -f /etc/kiln/imds.nft ]] && ! out=$(nft -c -f /etc/kiln/imds.nft 2>&1); then
  fail "$G" "/etc/kiln/imds.nft does not load: $out"
fi
# The rule lets uid 0 through: every uid-0 account is root.
while IFS=: read -r name _ uid _; do
  [[ $uid == 0 && $name != root ]] && fail "$G" "the account '$name' has uid 0, which the IMDS rule lets through"
done </etc/passwd
if ! kiln_uid=$(id -u kiln 2>/dev/null); then
  fail "$G" "the build user 'kiln' is missing"
else
  ((kiln_uid != 0)) || fail "$G" "the build user 'kiln' has uid 0"
  want=" ${BUILD_USER_GROUPS[*]} "
  for g in $(id -nG kiln); do
    [[ $g == kiln || $want == *" $g "* ]] \
      || fail "$G" "the build user 'kiln' is in group '$g', which build_user_groups does not name"
  done
  # A sudo rule for the build user (or its group) would give builds root.
  if rules=$(grep -rEsn '^[[:space:]]*%?kiln([[:space:],=]|$)' /etc/sudoers /etc/sudoers.d); then
    fail "$G" "sudo gives the build user 'kiln' rights: ${rules//$'\n'/; }"
  fi
fi

# ---- No system sshd on port 22 (unless system_sshd_port asks for one, on another port). ----
G="no system sshd on port 22"
# Debian's ssh.socket listens on 22 whatever sshd_config says.
state=$(systemctl is-enabled ssh.socket 2>/dev/null)
[[ $state == enabled || $state == enabled-runtime ]] \
  && fail "$G" "ssh.socket is enabled: it listens on port 22 (the agent's SSH); systemctl disable ssh.socket"
if [[ $SYSTEM_SSHD_PORT == 0 ]]; then
  state=$(systemctl is-enabled ssh.service 2>/dev/null)
  [[ $state == enabled || $state == enabled-runtime ]] \
    && fail "$G" "ssh.service is enabled (system_sshd_port is 0: the agent's SSH server has port 22); systemctl disable ssh.service, or build with -var system_sshd_port=N"
elif command -v sshd >/dev/null 2>&1; then
  key=$(mktemp -d)
  ssh-keygen -q -t ed25519 -N '' -f "$key/key"
  made_run_sshd=0
  [[ -d /run/sshd ]] || { install -d -m 0755 /run/sshd; made_run_sshd=1; }
  ports=$(sshd -T -h "$key/key" 2>&1 | sed -n 's/^port //p' | tr '\n' ' ')
  ((made_run_sshd)) && rmdir /run/sshd
  rm -rf "$key"
  [[ $ports == "$SYSTEM_SSHD_PORT " ]] \
    || fail "$G" "sshd would listen on port(s) '${ports% }', not only system_sshd_port $SYSTEM_SSHD_PORT"
else
  fail "$G" "system_sshd_port is $SYSTEM_SSHD_PORT but the image has no sshd"
fi

# ---- Nothing of this build instance that every instance would share. ----
G="no agent state or host keys in the image"
if [[ -d /var/lib/kiln ]] && [[ -n $(ls -A /var/lib/kiln) ]]; then
  fail "$G" "/var/lib/kiln is not empty (was the agent started during the build?): $(find /var/lib/kiln -mindepth 1 -maxdepth 1 -printf '%f ')"
fi
keys=$(find /etc/ssh -maxdepth 1 -name 'ssh_host_*' 2>/dev/null | tr '\n' ' ')
[[ -z $keys ]] || fail "$G" "SSH host keys would be shared by every instance: $keys"

if ((failures)); then
  printf '[check-image] %d broken guarantee(s): the image is not registered; fix the user script or the variables\n' "$failures" >&2
  exit 1
fi
echo "[check-image] ok: the agent's unit, the boot backstop, IMDS for root only, $( ((SYSTEM_SSHD_PORT)) && echo "sshd on port $SYSTEM_SSHD_PORT only" || echo "no system sshd"), no agent state"
