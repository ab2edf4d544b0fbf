#!/usr/bin/env bash
# Run the PHPUnit suite of every shop module (each modules/*/ folder with a phpunit.xml), or of
# the module folders given, with Debian's phpunit (`make system-deps` installs it).
#   tests/tools/phpunit.sh                       every module
#   tests/tools/phpunit.sh modules/prestashop    one module
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v phpunit >/dev/null || ! command -v php >/dev/null; then
  echo "php or phpunit is missing: make system-deps installs them" >&2
  exit 2
fi

dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
  for config in modules/*/phpunit.xml; do
    [ -f "$config" ] && dirs+=("$(dirname "$config")")
  done
fi
if [ ${#dirs[@]} -eq 0 ]; then
  echo "no modules/*/phpunit.xml found" >&2
  exit 1
fi

status=0
for dir in "${dirs[@]}"; do
  echo "=== PHPUnit: $dir ==="
  phpunit --configuration "$dir/phpunit.xml" || status=1
done
exit $status
