#!/bin/bash
# The dev box image's provisioning script (packer/devbox.pkrvars.hcl: user_script). packer runs it
# as root on the build instance, with network, after Debian's packages are installed; its output is
# in the build log. It adds what Debian does not have: BeakerX from PyPI, and Leiningen's
# dependencies from Clojars and Maven Central, pre-fetched for the build user so that the first
# `lein repl` on the box starts without downloading.
set -euo pipefail

# ---- BeakerX, in a virtual environment that sees Debian's Jupyter. ----
# Set BEAKERX= (empty) to leave it out.
BEAKERX=${BEAKERX-beakerx}
if [[ -n $BEAKERX ]]; then
  python3 -m venv --system-site-packages /opt/jupyter
  /opt/jupyter/bin/pip install --no-cache-dir --quiet "$BEAKERX"
  # Registers its kernels under /usr/local/share/jupyter, where every user's Jupyter finds them.
  /opt/jupyter/bin/beakerx install --prefix /usr/local || echo "beakerx install failed; its kernels are not registered"
fi

# ---- Leiningen's dependencies, for the build user (the boot script and services run as it). ----
# A project.clj naming what your projects use (nREPL, the Clojure version, your libraries); here a
# minimal one. `lein deps` downloads into ~kiln/.m2/repository, which stays in the image.
KILN_HOME=$(getent passwd kiln | cut -d: -f6)
project=$(mktemp -d)
cat >"$project/project.clj" <<'CLJ'
(defproject kiln-devbox-warmup "0"
  :dependencies [[org.clojure/clojure "1.11.1"]
                 [nrepl/nrepl "1.0.0"]])
CLJ
chown -R kiln: "$project"
setpriv --reuid=kiln --regid=kiln --init-groups env HOME="$KILN_HOME" sh -c "cd '$project' && lein deps && lein version"
rm -rf "$project"
