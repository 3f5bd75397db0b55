#!/bin/bash
# The preview image's provisioning script (packer/preview.pkrvars.hcl: user_script). packer runs it
# as root on the build instance after the packages are installed (docker.io is running by then);
# its output is in the build log. It pre-pulls the app's container images into /var/lib/docker, so
# that a preview's `docker-compose up -d` (its boot script) starts from the image instead of a
# registry. This is the place for your app's images: list them below, or pull what your compose
# file names (`docker-compose -f compose.yml pull`, with the file fetched by git first).
set -euo pipefail

# The images your compose file names, pinned (tag or digest), e.g.
#   IMAGES=(postgres:16.4 redis:7.2 ghcr.io/example/shop:main)
IMAGES=()

if ((${#IMAGES[@]} == 0)); then
  echo "no images to pre-pull (list them in IMAGES in packer/scripts/preview.sh)"
  exit 0
fi
# Enabled by the package; on the build instance it runs already, this waits until it answers.
systemctl start docker.service
for _ in $(seq 30); do
  docker info >/dev/null 2>&1 && break
  sleep 1
done
for image in "${IMAGES[@]}"; do
  echo "docker pull $image"
  docker pull --quiet "$image"
done
docker image ls
