#!/usr/bin/env bash
# Create the secret files docker-compose.yml mounts, in ./secrets next to it: a random value
# for each password or client secret that does not exist yet, an empty SMTP password (write
# your relay's password there if it needs a login). Never overwrites a file.
#
# The directory is the host's only copy: owner-only (0700). Each file is readable by every
# user (0444) because the containers run as different users (postgres, keycloak 1000,
# apsis-sso 10001) and compose mounts the files as they are; the 0700 directory keeps other
# host users out.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
chmod 0700 secrets
for name in postgres_password keycloak_bootstrap_admin_password keycloak_admin_password tooling_client_secret portal_session_key; do
  if [ ! -e "secrets/$name" ]; then
    head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40 > "secrets/$name"
    echo "created secrets/$name" >&2
  fi
done
[ -e secrets/smtp_password ] || { : > secrets/smtp_password; echo "created secrets/smtp_password (empty)" >&2; }
chmod 0444 secrets/*
