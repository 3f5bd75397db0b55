#!/bin/bash
# The server image's provisioning script (packer/server.pkrvars.hcl: user_script). packer runs it as
# root on the build instance after nginx, gunicorn and sqlite3 are installed; its output is in the
# build log. It makes nginx (enabled by its package, root, port 80) a reverse proxy to the app,
# which a Kiln service runs as the build user on 127.0.0.1:8000, e.g. in config.yml's template:
#   kiln.services: [{name: web, port: 8000, command: "gunicorn --bind 127.0.0.1:8000 app:app"}]
set -euo pipefail

cat >/etc/nginx/sites-available/kiln-app <<'NGINX'
# The app, served by gunicorn as the build user (a Kiln service) on 127.0.0.1:8000.
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    location / {
        proxy_pass http://127.0.0.1:8000;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
NGINX
rm -f /etc/nginx/sites-enabled/default
ln -sf /etc/nginx/sites-available/kiln-app /etc/nginx/sites-enabled/kiln-app
nginx -t
