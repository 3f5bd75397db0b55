# The remote dev box: the agent's image plus a JDK, Leiningen and Jupyter, for work reached through
# SSH port forwarding (a REPL, a notebook server) with the code on a reusable /data volume.
#
#   packer build -var-file=devbox.pkrvars.hcl -var region=eu-west-1 .       # in packer/
#
# The AMI is kiln-devbox-YYYYMMDD-hhmmss; `kiln launch --ami 'kiln-devbox-*'` (or `ami:` in a
# template of config.yml) takes the newest. docs/images.md has the whole recipe.

ami_name_prefix = "kiln-devbox-"
# Compiles and notebooks want more memory than the agent's build box.
instance_type = "t3.medium"

# All from Debian 12: default-jdk is OpenJDK 17 (the agent's Java too); leiningen is Debian's
# Leiningen 2.10 (with Debian's Clojure and nREPL); jupyter-notebook with python3-ipykernel is the
# classic notebook server (6.4). Add the libraries your notebooks import from Debian too, e.g.
# python3-pandas, python3-matplotlib (together about 400 MB and a few minutes more of build).
#
# Not in Debian, and installed by scripts/devbox.sh instead:
#   - BeakerX (polyglot kernels: Groovy, Scala, Clojure, Java, SQL; from PyPI) into the virtual
#     environment /opt/jupyter (python3 -m venv --system-site-packages, so Debian's Jupyter is
#     seen), its kernels registered system-wide; BeakerX's last release targets the classic
#     notebook 6, which is what Debian 12 has;
#   - Leiningen's plugins and the project's dependencies: fetched from Clojars and Maven Central
#     by `lein deps` as the build user, into ~kiln/.m2, from the project.clj the script names.
extra_packages = [
  "default-jdk",
  "leiningen",
  "jupyter-notebook",
  "python3-ipykernel",
  "python3-venv",
  "python3-pip",
  "git",
]

user_script = "scripts/devbox.sh"
