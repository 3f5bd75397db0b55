# The small always-on server: the agent's image plus a web server, an app server and SQLite, for an
# app whose database lives on a data volume (e.g. /mnt/data) that outlives the instance and is
# snapshotted nightly.
#
#   packer build -var-file=server.pkrvars.hcl -var region=eu-west-1 .       # in packer/
#
# The AMI is kiln-server-YYYYMMDD-hhmmss; `kiln launch --ami 'kiln-server-*'` (or `ami:` in a
# template of config.yml) takes the newest. docs/images.md has the whole recipe.

ami_name_prefix = "kiln-server-"

# nginx in front (port 80, started by systemd as root and dropping to www-data), gunicorn running a
# Python WSGI app (Flask here) as the build user from a Kiln service, SQLite as the database.
extra_packages = ["nginx", "sqlite3", "gunicorn", "python3-flask"]

# nginx proxies port 80 to the app on 127.0.0.1:8000: see scripts/server.sh.
user_script = "scripts/server.sh"
