# The pull-request preview box: the agent's image plus git, Docker and docker compose, with the
# app's container images pulled into the image so a preview starts without waiting for a registry.
#
#   packer build -var-file=preview.pkrvars.hcl -var region=eu-west-1 .      # in packer/
#
# The AMI is kiln-preview-YYYYMMDD-hhmmss; `kiln launch --ami 'kiln-preview-*'` (or `ami:` in a
# template of config.yml) takes the newest. docs/images.md has the whole recipe.

ami_name_prefix = "kiln-preview-"
# Room for the pre-pulled images and the containers' data (the snapshot is billed for used blocks
# only; each instance's root volume for its size, while it runs).
root_volume_size = 16

# docker-compose is Debian 12's compose v1 (`docker-compose up -d`); the v2 plugin (`docker compose`)
# is not in Debian 12: install it from Docker's own apt repository in the user script if the app
# needs it.
extra_packages = ["git", "docker.io", "docker-compose"]

# The boot script and services run as the build user; to start containers it must reach the Docker
# daemon. Membership of `docker` makes the build user root-equivalent on this box (a container can
# mount / and run as root): anything a branch's build or boot script runs can become root here,
# including reading the instance's user data (its TLS key) through a container. Acceptable for a
# throwaway preview box that runs code you would deploy anyway; leave it out where that is not so.
build_user_groups = ["docker"]

# Pre-pulls the app's images (the list at its top): see scripts/preview.sh.
user_script = "scripts/preview.sh"
