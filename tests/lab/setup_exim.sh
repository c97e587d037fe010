#!/usr/bin/env bash
# Exim for the lab, beside Postfix: Debian's MTAs conflict as packages (installing
# exim4 removes postfix), so the Exim binary is unpacked, not installed. The lab starts
# it with its own -C config as the receiver whose EHLO reply echoes the client's address
# ("250-host Hello name [198.18.1.2]"), the third public-address method of readiness.
#
# Idempotent, root only (CI is root): `bash tests/lab/setup_exim.sh`. Without it the
# Exim-dependent lab tests skip (or fail under CI=true) and say why.
set -euo pipefail

PREFIX="${PPLAB_EXIM_PREFIX:-/opt/portprobe-lab/exim}"
CACHE="${PPLAB_EXIM_CACHE:-/var/cache/portprobe-lab}"
BINARY="$PREFIX/usr/sbin/exim4"

if [ "$(id -u)" != 0 ]; then
    echo "setup_exim.sh: needs root (dpkg -x into $PREFIX, a system user)" >&2
    exit 1
fi

if [ -x "$BINARY" ] && "$BINARY" -C /dev/null -bV >/dev/null 2>&1 && getent passwd Debian-exim >/dev/null; then
    exit 0
fi

mkdir -p "$CACHE" "$PREFIX"
cd "$CACHE"
if ! ls exim4-daemon-light_*.deb exim4-base_*.deb >/dev/null 2>&1; then
    apt-get update -q
    # As root into a root-owned directory: apt warns that _apt cannot write here and
    # downloads unsandboxed, which is harmless.
    apt-get download exim4-daemon-light exim4-base
fi
for deb in exim4-daemon-light_*.deb exim4-base_*.deb; do
    dpkg -x "$deb" "$PREFIX"
done

# The binary's libraries that a Postfix machine lacks (libidn12 on Debian 12): install
# whatever ldd reports missing, by the package that ships it.
missing_libs=$(ldd "$BINARY" | awk '/not found/ {print $1}')
if [ -n "$missing_libs" ]; then
    packages=""
    for lib in $missing_libs; do
        case "$lib" in
            libidn.so.12) packages="$packages libidn12" ;;
            *) packages="$packages $(apt-cache search --names-only "^${lib%%.so*}[0-9]*$" | awk 'NR==1 {print $1}')" ;;
        esac
    done
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
fi

getent group Debian-exim >/dev/null || groupadd --system Debian-exim
getent passwd Debian-exim >/dev/null ||
    useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home \
        --shell /usr/sbin/nologin Debian-exim

"$BINARY" -C /dev/null -bV | sed -n 1p
