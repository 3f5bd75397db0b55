#!/usr/bin/env bash
# Turns a Debian 12 instance into a Kiln agent image. packer runs it as root on the build
# instance (packer/kiln-agent.pkr.hcl), after uploading its inputs to $PROVISION_STAGING:
#
#   kiln-agent.jar       the agent (agent/target/kiln-agent.jar)
#   kiln-agent.service   the systemd unit (systemd/kiln-agent.service)
#   agent.yml            the default settings (packer/agent.yml)
#   kiln-boot-backstop, kiln-boot-backstop.service
#                        the boot backstop and its unit (systemd/)
#   kiln-imds.nft        the packet filter that lets only root reach IMDS (packer/kiln-imds.nft)
#   kiln-imds.service    the unit that loads it at boot (systemd/kiln-imds.service)
#   user-script          optional: the user's provisioning script (the template's user_script)
#
# Environment:
#   PROVISION_STAGING  where those files are (default /tmp/kiln-provision); removed at the end
#   SYSTEM_SSHD_PORT   0 (default): disable Debian's sshd, so the agent's own SSH server can have
#                      port 22 and the image has no second way in; N: keep sshd, moved to port N
#   EXTRA_PACKAGES     Debian packages to install besides the agent's own, separated by spaces
#   BUILD_USER_GROUPS  groups the build user `kiln` joins, separated by spaces (exactly these: it
#                      leaves any other); e.g. docker, which makes it root-equivalent on the box
#
# The user's script runs as root after everything of the agent's is in place and before what a
# build instance must not leave in the image is removed; packer/check-image.sh, run after this
# script, fails the build if the script broke one of the image's guarantees.
#
# Idempotent: running it again on the same machine converges to the same state (apt installs
# nothing new, files are replaced by the same content, the user exists). It never starts the
# agent on its real state: an agent started during the bake would leave its state (lease deadline,
# SSH host key) in the image, shared by every instance. The one agent it runs, to train the
# class-data archive, lives in a temporary directory that is removed again.
set -euo pipefail

STAGING=${PROVISION_STAGING:-/tmp/kiln-provision}
SYSTEM_SSHD_PORT=${SYSTEM_SSHD_PORT:-0}
read -r -a EXTRA_PACKAGES <<<"${EXTRA_PACKAGES:-}"
read -r -a BUILD_USER_GROUPS <<<"${BUILD_USER_GROUPS:-}"

log() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (packer runs this script with sudo)"
for f in kiln-agent.jar kiln-agent.service agent.yml kiln-boot-backstop kiln-boot-backstop.service kiln-imds.nft kiln-imds.service; do
  [[ -s "$STAGING/$f" ]] || die "missing $STAGING/$f (uploaded by the template's file provisioners)"
done
[[ $SYSTEM_SSHD_PORT =~ ^[0-9]+$ ]] || die "SYSTEM_SSHD_PORT must be a number, got '$SYSTEM_SSHD_PORT'"
for p in "${EXTRA_PACKAGES[@]}"; do
  [[ $p =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "EXTRA_PACKAGES: '$p' is not a Debian package name"
done
for g in "${BUILD_USER_GROUPS[@]}"; do
  [[ $g =~ ^[a-z_][a-z0-9_-]{0,31}$ && $g != root && $g != sudo ]] \
    || die "BUILD_USER_GROUPS: '$g' is not a group name the build user may join (not root, not sudo)"
done
USER_SCRIPT=$STAGING/user-script
if [[ -s $USER_SCRIPT ]]; then
  [[ $(head -c 2 "$USER_SCRIPT") == '#!' ]] \
    || die "the user script (user_script) has no #! line: start it with e.g. #!/bin/bash, so it runs with the shell it was written for"
fi

# ---- Let first boot finish: cloud-init may still be running apt or writing sshd's config. ----
if command -v cloud-init >/dev/null 2>&1; then
  log "waiting for cloud-init to finish"
  cloud-init status --wait >/dev/null || log "cloud-init reported an error; continuing"
fi

# ---- Debian packages. ----
# What the agent and its builds run: Java 17 for the agent; tup with FUSE for builds; the
# encoders of the music profiles; rsync (served as `rsync --server`); bubblewrap to confine it;
# mkfs/blkid/losetup/fsfreeze/setpriv/setsid for volumes and builds; nvme-cli to inspect EBS
# NVMe devices by hand; nftables for the packet filter that keeps IMDS from the build user.
PACKAGES=(
  openjdk-17-jre-headless
  tup fuse3
  flac lame vorbis-tools opus-tools sox
  rsync bubblewrap
  e2fsprogs xfsprogs util-linux
  nvme-cli
  curl
  nftables
)
export DEBIAN_FRONTEND=noninteractive
# Keep existing config files on upgrades, never ask.
apt_get() {
  apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
}
log "apt-get update and full-upgrade (the image starts with today's security fixes)"
apt_get update
apt_get full-upgrade
# The user's packages (extra_packages) go in the same run: one resolution, so a conflict with the
# agent's own packages fails here, naming both.
log "apt-get install ${PACKAGES[*]}${EXTRA_PACKAGES[*]:+ and extra_packages: ${EXTRA_PACKAGES[*]}}"
apt_get install --no-install-recommends "${PACKAGES[@]}" "${EXTRA_PACKAGES[@]}"
apt_get autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/*

# Everything the agent calls by name must be there now.
for cmd in java tup fusermount3 flac lame oggenc opusenc sox rsync bwrap mkfs.ext4 mkfs.xfs \
           blkid losetup fsfreeze setpriv setsid nvme systemd-run curl nft; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is missing after apt-get install"
done
# The unit runs /usr/bin/java; it must be Java 17.
/usr/bin/java -version 2>&1 | grep -q 'version "17\.' \
  || die "/usr/bin/java is not Java 17: $(/usr/bin/java -version 2>&1 | head -1)"

# ---- The unprivileged build user. ----
# The agent runs as root and starts every build as `kiln` (setpriv), never as root.
if ! getent passwd kiln >/dev/null; then
  log "useradd --system kiln (the build user)"
  useradd --system --create-home --home-dir /var/lib/kiln-build --shell /usr/sbin/nologin kiln
fi
# Readers' SSH sessions read with this account's access, never root's (docs/serving.md).
if ! getent passwd kiln-serve >/dev/null; then
  log "useradd --system kiln-serve (readers' SSH sessions)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kiln-serve
fi

# ---- FUSE. ----
# tup mounts its FUSE file system as the build user, through the setuid fusermount3, and only that
# user reads it: /etc/fuse.conf needs no user_allow_other, so it stays as Debian ships it.

# ---- The agent, its settings and its unit. ----
log "installing /opt/kiln/kiln-agent.jar, /etc/kiln/agent.yml, kiln-agent.service"
install -d -m 0755 -o root -g root /opt/kiln /etc/kiln
install -m 0644 -o root -g root "$STAGING/kiln-agent.jar" /opt/kiln/kiln-agent.jar
# No secrets in this file: TLS material and the lease come from user data at boot.
install -m 0644 -o root -g root "$STAGING/agent.yml" /etc/kiln/agent.yml
install -m 0644 -o root -g root "$STAGING/kiln-agent.service" /etc/systemd/system/kiln-agent.service

# ---- Only root reaches IMDS. ----
# The user data holds the agent's TLS key; builds, boot scripts and services run as `kiln`. The
# table refuses every non-root socket's connections to 169.254.169.254 and fd00:ec2::254;
# kiln-imds.service loads it at each boot, before the network and kiln-agent (which probes it at
# start and reports a problem if the build user still gets through).
log "installing /etc/kiln/imds.nft and kiln-imds.service (only root reaches IMDS)"
install -m 0644 -o root -g root "$STAGING/kiln-imds.nft" /etc/kiln/imds.nft
install -m 0644 -o root -g root "$STAGING/kiln-imds.service" /etc/systemd/system/kiln-imds.service
# nft -c parses the file and has the kernel check it without committing anything: a broken rule
# fails the bake instead of every instance's boot. It is not loaded here: root, which runs this
# script, is not affected by it anyway, and the image starts it at boot.
nft -c -f /etc/kiln/imds.nft || die "/etc/kiln/imds.nft does not load (nft -c -f)"

systemd-analyze verify /etc/systemd/system/kiln-imds.service /etc/systemd/system/kiln-agent.service
# Only a running systemd has anything to reload; in a chroot (CI runs this script in one) there is none.
if [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
fi
# Enabled, not started (see the top of this file); they start on the first boot of each instance.
systemctl enable kiln-imds.service kiln-agent.service

# ---- The boot backstop: ends the instance at its lease even if the agent never runs. ----
log "installing the boot backstop (/opt/kiln/bin/kiln-boot-backstop, kiln-boot-backstop.service)"
install -d -m 0755 -o root -g root /opt/kiln/bin
install -m 0755 -o root -g root "$STAGING/kiln-boot-backstop" /opt/kiln/bin/kiln-boot-backstop
install -m 0644 -o root -g root "$STAGING/kiln-boot-backstop.service" /etc/systemd/system/kiln-boot-backstop.service
systemd-analyze verify /etc/systemd/system/kiln-boot-backstop.service
systemctl enable kiln-boot-backstop.service

# ---- An AppCDS archive of the agent's classes (a quicker start: docs/performance.md). ----
# A training agent runs once in local mode with throwaway TLS material and state (a temporary
# directory, removed again: nothing of it stays in the image), answers one TLS handshake, and
# writes the classes it loaded to the archive as its JVM exits on TERM. The unit maps it
# (AGENT_CDS_OPTS). The archive belongs to this JDK build: after an apt upgrade of the JDK the
# JVM ignores it and starts as without one. Without openssl (for the throwaway certificate), or if
# the training fails, the image simply has no archive.
CDS=/opt/kiln/kiln-agent.jsa
rm -f "$CDS"
if command -v openssl >/dev/null 2>&1; then
  log "training the agent's class-data archive ($CDS)"
  train=$(mktemp -d)
  # One certificate is the CA, the agent's and the client's: the agent accepts a client certificate
  # only for clientAuth, so it names both usages and the handshake below is an accepted one.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=kiln-cds-training \
    -addext subjectAltName=IP:127.0.0.1 -addext extendedKeyUsage=serverAuth,clientAuth \
    -keyout "$train/key.pem" -out "$train/cert.pem" 2>/dev/null
  port=$(( (RANDOM % 20000) + 30000 ))
  agent_opts=$(sed -n 's/^Environment="AGENT_JAVA_OPTS=\(.*\)"$/\1/p' /etc/systemd/system/kiln-agent.service)
  # shellcheck disable=SC2086 # the unit's options are words, as systemd splits them
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin KILN_MODE=local KILN_STATE_DIR="$train/state" \
    KILN_GRPC_HOST=127.0.0.1 KILN_GRPC_PORT="$port" KILN_LEASE_BACKSTOP=none \
    KILN_TLS_CERT="$train/cert.pem" KILN_TLS_KEY="$train/key.pem" KILN_TLS_CA="$train/cert.pem" \
    /usr/bin/java $agent_opts -XX:ArchiveClassesAtExit="$CDS.tmp" -Xlog:cds=off -Xlog:cds+dynamic=off \
    -jar /opt/kiln/kiln-agent.jar >"$train/agent.log" 2>&1 &
  pid=$!
  for ((i = 0; i < 600; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  # One mutual-TLS handshake, so the server's handshake classes are archived too.
  openssl s_client -connect "127.0.0.1:$port" -cert "$train/cert.pem" -key "$train/key.pem" \
    -CAfile "$train/cert.pem" -alpn h2 </dev/null >/dev/null 2>&1 || true
  kill "$pid" 2>/dev/null || true
  status=0
  wait "$pid" || status=$?
  if [[ ($status == 143 || $status == 0) && -s $CDS.tmp ]]; then
    mv -f "$CDS.tmp" "$CDS"
    chmod 0644 "$CDS"
  else
    log "warning: no class-data archive (the training agent exited with $status); its log:"
    tail -5 "$train/agent.log" >&2 || true
    rm -f "$CDS.tmp"
  fi
  rm -rf "$train"
else
  log "no openssl: the image has no class-data archive (the agent starts about a second slower)"
fi
if [[ -d /var/lib/kiln ]] && [[ -n "$(ls -A /var/lib/kiln)" ]]; then
  log "warning: /var/lib/kiln is not empty; every instance of this image would start with that state"
fi

# ---- The system sshd. ----
# The agent serves SFTP, scp, rsync and sshfs on port 22 with its own SSH server (public keys from
# the controller, chrooted, no shell). Debian's sshd would hold port 22 and be a second, full
# way in, so by default it is disabled in the image. It keeps running for packer's own session on
# this build instance; instances of the image boot without it.
# To keep it (for debugging), build with `-var system_sshd_port=2222`: sshd then listens on 2222
# only, and EC2 key pairs (kiln launch --key-name) work there as usual, as user `admin`.
KILN_SSHD_CONF=/etc/ssh/sshd_config.d/kiln-port.conf
ssh_units=()
for unit in ssh.service ssh.socket; do
  if systemctl list-unit-files "$unit" --no-legend 2>/dev/null | grep -q "^$unit"; then
    ssh_units+=("$unit")
  fi
done
if [[ $SYSTEM_SSHD_PORT == 0 ]]; then
  rm -f "$KILN_SSHD_CONF"
  if ((${#ssh_units[@]})); then
    log "disabling the system sshd (${ssh_units[*]}) in the image"
    systemctl disable "${ssh_units[@]}"
  fi
else
  ((SYSTEM_SSHD_PORT != 22 && SYSTEM_SSHD_PORT < 65536)) \
    || die "SYSTEM_SSHD_PORT must be a free port other than 22, got $SYSTEM_SSHD_PORT"
  command -v sshd >/dev/null 2>&1 || die "system_sshd_port is set but this image has no sshd"
  log "keeping the system sshd, on port $SYSTEM_SSHD_PORT"
  # Debian's sshd_config includes sshd_config.d/*.conf first and has no Port line of its own.
  printf '# Written by Kiln'"'"'s provision.sh: the agent serves SSH on port 22.\nPort %s\n' \
    "$SYSTEM_SSHD_PORT" >"$KILN_SSHD_CONF"
  # A throwaway host key: the check must not depend on (or create) the image's own, removed below.
  check_key=$(mktemp -d)
  ssh-keygen -q -t ed25519 -N '' -f "$check_key/key"
  # sshd -T wants its privilege separation directory, which systemd makes when ssh.service starts
  # (a chroot, or a machine where sshd is not running, has none); a temporary one is removed again.
  made_run_sshd=0
  if [[ ! -d /run/sshd ]]; then
    install -d -m 0755 /run/sshd
    made_run_sshd=1
  fi
  config=$(sshd -T -h "$check_key/key" 2>&1) || die "sshd -T cannot read its configuration: $config"
  ports=$(sed -n 's/^port //p' <<<"$config" | tr '\n' ' ')
  if ((made_run_sshd)); then
    rmdir /run/sshd
  fi
  rm -rf "$check_key"
  [[ $ports == "$SYSTEM_SSHD_PORT " ]] \
    || die "sshd would listen on port(s) '$ports', not only $SYSTEM_SSHD_PORT; check /etc/ssh/sshd_config"
  # Takes effect at the next boot; restarting sshd now would not help packer's session.
  systemctl enable ssh.service
fi

# ---- The user's provisioning script (user_script). ----
# As root, with a plain environment and no stdin, its output in the build log (prefixed). It may
# add anything; check-image.sh (run after this script) fails the build if it undid one of the
# guarantees above. It runs before the clean-up below, so what it leaves of that kind (host keys,
# apt lists, history) is removed too.
if [[ -s $USER_SCRIPT ]]; then
  chmod 0700 "$USER_SCRIPT"
  log "running the user script (user_script); its output follows, prefixed [user-script]"
  status=0
  (cd / && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive KILN_BUILD_USER=kiln "$USER_SCRIPT" </dev/null 2>&1) \
    | sed -u 's/^/[user-script] /' || status=${PIPESTATUS[0]}
  ((status == 0)) || die "the user script (user_script) failed with exit status $status (its output is above)"
  log "the user script finished"
fi

# ---- The build user's groups (build_user_groups): exactly these, after the packages and the ----
# user script, which may create them. Anything that can run `docker` (group docker) or write a
# device (disk) is root on this box: the option says so where it is documented.
for g in "${BUILD_USER_GROUPS[@]}"; do
  getent group "$g" >/dev/null \
    || die "build_user_groups names '$g', which does not exist after the packages and the user script; add the package that makes it to extra_packages or create it in user_script"
done
groups_csv=$(IFS=,; echo "${BUILD_USER_GROUPS[*]}")
log "the build user's supplementary groups: ${groups_csv:-none}"
usermod -G "$groups_csv" kiln

# ---- What this build instance leaves behind that must not be in every instance of the image. ----
# SSH host keys: every instance would share them. Debian's cloud-init (ssh_deletekeys) makes new
# ones at each instance's first boot, for the system sshd when it is kept.
log "removing SSH host keys, shell history and cloud-init's instance state"
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
# Shell history of root and of every user with a home (packer's session ran as admin).
rm -f /root/.bash_history /root/.lesshst /root/.viminfo
for home in /home/*; do
  [[ -d $home ]] && rm -f "$home/.bash_history" "$home/.lesshst" "$home/.viminfo"
done
# cloud-init's record of this build instance: without it, each instance runs cloud-init's
# per-instance steps (SSH keys, user data, host name) for itself.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs
else
  rm -rf /var/lib/cloud/instance /var/lib/cloud/instances /var/lib/cloud/data /var/lib/cloud/sem
fi

# The machine id: systemd derives the DHCP client identity, the journal's directory and other
# per-machine names from it, so every instance would share this build instance's. An empty (not
# missing) /etc/machine-id makes systemd generate a new one at each instance's first boot; D-Bus's
# copy becomes a link to it, as Debian makes it, so the two never disagree.
log "resetting the machine id"
truncate -s 0 /etc/machine-id
if [[ -d /var/lib/dbus ]]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi

# The apt lists a user script fetched (apt-get update), and its downloaded packages.
apt-get clean
rm -rf /var/lib/apt/lists/*

# ---- Done: the staging files are not part of the image. ----
rm -rf "$STAGING"
log "done: kiln-agent installed and enabled; IMDS root-only; sshd $( ((SYSTEM_SSHD_PORT)) && echo "on port $SYSTEM_SSHD_PORT" || echo disabled)"
