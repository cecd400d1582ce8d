#!/bin/sh
# npm run dist: the installers for this platform, from Forge's packaged app (docs/install.md).
#
#   sh build/dist.sh [--prepackaged DIR] [electron-builder flags, e.g. --linux deb rpm]
#
# Without --prepackaged it runs `electron-forge package` first and takes out/Berth-<platform>-<arch>. It then adds
# the installer resources (berth-helper's systemd units and setup script, or its launchd plist and scripts), checks
# the layout the installers rely on, and runs electron-builder on it with build/electron-builder.yml. With no target
# flags electron-builder builds the config's targets for this platform (deb, rpm, AppImage / dmg, pkg / nsis).
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
cd "$repo"

prepackaged=
if [ "${1:-}" = --prepackaged ]; then
  [ $# -ge 2 ] || {
    echo "dist: --prepackaged needs a folder" >&2
    exit 2
  }
  prepackaged=$2
  shift 2
fi

case $(uname -s) in
  Linux) platform=linux ;;
  Darwin) platform=darwin ;;
  *) platform=win32 ;;
esac

if [ -z "$prepackaged" ]; then
  npx electron-forge package
  arch=$(node -p process.arch)
  prepackaged=out/Berth-$platform-$arch
fi
[ -d "$prepackaged" ] || {
  echo "dist: no packaged app at $prepackaged" >&2
  exit 1
}

if [ "$platform" = darwin ]; then
  resources=$(find "$prepackaged" -maxdepth 1 -name '*.app' | head -n 1)/Contents/Resources
else
  resources=$prepackaged/resources
fi

# The installer resources: the same files build/electron-builder.yml's extraResources name.
stage() {
  mkdir -p "$resources/$2"
  cp "$1" "$resources/$2/$(basename -- "$1").new"
  chmod "$3" "$resources/$2/$(basename -- "$1").new"
  mv -f "$resources/$2/$(basename -- "$1").new" "$resources/$2/$(basename -- "$1")"
}
case $platform in
  linux)
    stage build/linux/berth-helper-setup linux 0755
    stage build/linux/berth-helper.socket linux 0644
    stage build/linux/berth-helper.service linux 0644
    ;;
  darwin)
    stage build/macos/dev.berth.helper.plist macos 0644
    stage build/macos/uninstall-helper macos 0755
    ;;
esac

# What Forge must have put there (forge.config.ts): the app with the renderer, the addon and the helper unpacked.
unpacked=$resources/app.asar.unpacked/native/build/Release
problems=
[ -f "$resources/app.asar" ] || problems="$problems
  - $resources/app.asar is missing"
if [ "$platform" != win32 ]; then
  [ -f "$unpacked/berth_native.node" ] || problems="$problems
  - berth_native.node is not unpacked at $unpacked (forge.config.ts: packagerConfig.asar.unpack)"
  [ -x "$unpacked/berth-helper" ] || problems="$problems
  - berth-helper is not unpacked (and executable) at $unpacked"
fi
if [ -f "$resources/app.asar" ] && ! npx asar list "$resources/app.asar" | grep -Eq '/renderer/(.*/)?index\.html$'; then
  problems="$problems
  - no renderer index.html inside app.asar"
fi
if [ -n "$problems" ]; then
  echo "dist: $prepackaged is not ready for the installers:$problems" >&2
  exit 1
fi

exec npx electron-builder --config build/electron-builder.yml --prepackaged "$prepackaged" "$@"
