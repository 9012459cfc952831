#!/bin/bash
# Entry point of the apsis-sso Keycloak image. Keycloak takes secrets only as options (the
# command line, KC_* variables, keycloak.conf, a keystore); containers get them as files.
# For every KC_<OPTION>_PASSWORD_FILE or KC_<OPTION>_SECRET_FILE that is set, this exports
# KC_<OPTION>_PASSWORD (or _SECRET) from that file (trailing newlines dropped), then runs
# kc.sh with the arguments given. No Keycloak option ends in -password-file or -secret-file,
# so no real option is mistaken for a file reference.
set -euo pipefail
for name in $(compgen -e); do
  case "$name" in
    KC_*_PASSWORD_FILE | KC_*_SECRET_FILE)
      file="${!name}"
      if [ ! -r "$file" ]; then
        echo "error: $name: cannot read $file" >&2
        exit 2
      fi
      export "${name%_FILE}=$(cat "$file")"
      unset "$name"
      ;;
  esac
done
exec "$(dirname "$0")/kc.sh" "$@"
