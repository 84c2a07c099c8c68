#!/usr/bin/env bash
# Builds the Debian package of this plugin for the Debian release it runs on:
#   dist/orthanc-python-multi_<version>_<arch>.deb
# Run it on that release (Debian 13 trixie or later: the package embeds the
# release's own python3, 3.13 or newer), or through a root of scripts/debian-root.sh:
#   scripts/in-root.sh trixie bash scripts/package-deb.sh
#   scripts/in-forky.sh bash scripts/package-deb.sh
# Missing build dependencies are installed with apt-get (as scripts/setup.sh does);
# the build's Python tools live in build/deb/ and the build is incremental there.
#
# The layout follows Debian's own Orthanc plugin packages (orthanc-python,
# orthanc-postgresql):
#   /usr/lib/orthanc/libOrthancPythonMulti.so.<version>      the plugin library
#   /usr/share/orthanc/plugins/libOrthancPythonMulti.so      a relative link to it: Debian's
#                                                            /etc/orthanc/orthanc.json loads
#                                                            every plugin of this folder
#   /etc/orthanc/python-multi.json                           a conffile, owned by the service's
#                                                            user orthanc, mode 0664 (postinst),
#                                                            inactive until a script is named
#   DEBIAN/triggers                                          activate-await orthanc-restart-trigger:
#                                                            Orthanc restarts on install, upgrade
#                                                            and removal
#   Section science, Depends orthanc (>= the SDK it was built with) and, from
#   dpkg-shlibdeps, the release's libpython3.X; /usr/share/doc/<package>/README.Debian.
# The Python part goes where the release's python3 finds it, as dh_python3 puts it:
# /usr/lib/python3/dist-packages/orthanc_python_multi (its lib/ links to the plugin,
# so `orthanc-python-multi plugin-path` names it), orthanc-stubs, the .dist-info
# without RECORD, /usr/bin/orthanc-python-multi; byte-compiled by py3compile in
# postinst and cleaned by py3clean in prerm.
#
# Relation to Debian's orthanc-python: Conflicts. Both read PythonScript and both are
# loaded from /usr/share/orthanc/plugins/; two embedded Pythons cannot share one
# Orthanc, so installing this package removes orthanc-python (packaging/debian/
# README.Debian says what happens to its python.json).
#
# Version: <pyproject version>-1+deb<N> (N: 13 trixie, 14 forky), so that the
# packages built for two releases have different names and upgrade in order.
# Maintainer: OPM_DEB_MAINTAINER (default: the project's maintainers address).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD

log() { echo "package-deb: $*" >&2; }

[ -f /etc/debian_version ] || { log "not a Debian system"; exit 2; }
. /etc/os-release
case ${VERSION_CODENAME:-} in
  trixie) debian_number=13 ;;
  forky) debian_number=14 ;;
  *)
    log "Debian ${VERSION_CODENAME:-?} is not a target: the package needs a release whose python3 is 3.13 or newer (trixie, forky); use scripts/in-root.sh trixie bash scripts/package-deb.sh"
    exit 2
    ;;
esac

build_packages=(orthanc orthanc-dev libjsoncpp-dev g++ python3 python3-venv python3-dev
  libpython3-dev dpkg-dev)
missing=()
for package in "${build_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing the build dependencies: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >&2
fi

python=/usr/bin/python3
upstream=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
version="$upstream-1+deb$debian_number"
arch=$(dpkg --print-architecture)
python_version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
# The Orthanc whose SDK the plugin is built with; the plugin refuses an older one.
orthanc_version=$(dpkg-query -W -f='${Version}' orthanc-dev)
orthanc_upstream=${orthanc_version%%[+~-]*}
package=orthanc-python-multi
deb="dist/${package}_${version}_${arch}.deb"
log "building $deb (Orthanc $orthanc_upstream SDK, Python $python_version)"

# The build's Python tools, in a virtual environment of the release's python3 (the
# plugin embeds its libpython, so it is built with that Python).
work=build/deb
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pybind11, clang, scikit_build_core' 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  log "installing the build tools into $venv"
  "$venv/bin/python" -m pip install -q "scikit-build-core>=0.10" "pybind11>=3.1" "libclang>=16" cmake ninja
fi

# Debian's hardening flags, all of them (bindnow included), given to CMake as
# definitions so that they reach an existing build folder too; no RPATH: libpython
# lies in the default library path.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxx_flags="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ld_flags=$(dpkg-buildflags --get LDFLAGS)
rm -rf "$work/wheel"
"$venv/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$work/wheel" \
  -C "build-dir=$work/{wheel_tag}" -C cmake.define.CMAKE_SKIP_RPATH=ON \
  -C "cmake.define.CMAKE_CXX_FLAGS=$cxx_flags" -C "cmake.define.CMAKE_SHARED_LINKER_FLAGS=$ld_flags" \
  . >&2
wheel=$(ls "$work"/wheel/orthanc_python_multi-*.whl)

# The package's tree.
tree=$work/tree
rm -rf "$tree" "$work/unpacked"
"$python" -m zipfile -e "$wheel" "$work/unpacked"
dist_packages=$tree/usr/lib/python3/dist-packages
library=libOrthancPythonMulti.so.$upstream
mkdir -p "$dist_packages" "$tree/usr/lib/orthanc" "$tree/usr/share/orthanc/plugins" \
  "$tree/usr/bin" "$tree/etc/orthanc" "$tree/usr/share/doc/$package" "$tree/usr/share/man/man1" \
  "$tree/DEBIAN"
cp -r "$work/unpacked/orthanc_python_multi" "$work/unpacked/orthanc-stubs" "$dist_packages/"
mv "$dist_packages/orthanc_python_multi/lib/libOrthancPythonMulti.so" "$tree/usr/lib/orthanc/$library"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$tree/usr/lib/orthanc/$library"
ln -s "../../../lib/orthanc/$library" "$tree/usr/share/orthanc/plugins/libOrthancPythonMulti.so"
ln -s "../../../../orthanc/$library" "$dist_packages/orthanc_python_multi/lib/libOrthancPythonMulti.so"
info=$dist_packages/orthanc_python_multi-$upstream.dist-info
mkdir -p "$info"
cp "$work"/unpacked/orthanc_python_multi-*.dist-info/{METADATA,entry_points.txt} "$info/"
cat > "$tree/usr/bin/orthanc-python-multi" <<'EOF'
#!/usr/bin/python3
"""The orthanc-python-multi command."""

import sys

from orthanc_python_multi.cli import main

sys.exit(main())
EOF
cp packaging/debian/python-multi.json "$tree/etc/orthanc/"
mkdir -p "$tree/usr/share/lintian/overrides"
cp packaging/debian/lintian-overrides "$tree/usr/share/lintian/overrides/$package"
cp packaging/debian/README.Debian packaging/debian/copyright "$tree/usr/share/doc/$package/"
gzip -9n < CHANGELOG.md > "$tree/usr/share/doc/$package/changelog.gz"
cp -r examples "$tree/usr/share/doc/$package/examples"
gzip -9n < packaging/debian/orthanc-python-multi.1 > "$tree/usr/share/man/man1/orthanc-python-multi.1.gz"
maintainer=${OPM_DEB_MAINTAINER:-orthanc-python-multi maintainers <maintainers@users.noreply.r-seed-33c5016e.example>}
{
  echo "$package ($version) $VERSION_CODENAME; urgency=medium"
  echo
  echo "  * Built by scripts/package-deb.sh for Debian $VERSION_CODENAME (Orthanc $orthanc_upstream,"
  echo "    Python $python_version). Upstream changes: changelog.gz."
  echo
  echo " -- $maintainer  $(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")"
} | gzip -9n > "$tree/usr/share/doc/$package/changelog.Debian.gz"
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
find "$tree" -type d -exec chmod 0755 {} +
find "$tree" -type f -exec chmod 0644 {} +
chmod 0755 "$tree/usr/bin/orthanc-python-multi"

# Control files. dpkg-shlibdeps reads the libraries' dependencies (libpython3.X,
# libjsoncpp, libstdc++); it wants a debian/control, so it runs in a scratch folder.
cp packaging/debian/postinst packaging/debian/prerm packaging/debian/triggers "$tree/DEBIAN/"
chmod 0755 "$tree/DEBIAN/postinst" "$tree/DEBIAN/prerm"
echo /etc/orthanc/python-multi.json > "$tree/DEBIAN/conffiles"
shlibs_work=$work/shlibdeps
rm -rf "$shlibs_work"
mkdir -p "$shlibs_work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" > "$shlibs_work/debian/control"
shlibs=$(cd "$shlibs_work" && dpkg-shlibdeps -O "$checkout/$tree/usr/lib/orthanc/$library" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { log "dpkg-shlibdeps found no dependencies"; exit 1; }
installed_size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
cat > "$tree/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: orthanc (>= $orthanc_upstream), python3, $shlibs
Conflicts: orthanc-python
Section: science
Priority: optional
Description: Orthanc plugins in Python, run in parallel sub-interpreters
 A drop-in replacement for orthanc-python: the same "orthanc" module and the
 same configuration options, but the script can run in several Python
 interpreters at once (PEP 684 sub-interpreters, each with its own GIL), so
 that CPU-bound REST routes and callbacks use every core.
 .
 Built for Orthanc $orthanc_upstream and Python $python_version. The plugin stays
 inactive until /etc/orthanc/python-multi.json names a script.
EOF
(cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum) > "$work/md5sums"
mv "$work/md5sums" "$tree/DEBIAN/md5sums"
chmod 0644 "$tree/DEBIAN/control" "$tree/DEBIAN/conffiles" "$tree/DEBIAN/md5sums" "$tree/DEBIAN/triggers"

mkdir -p dist
# An earlier version built here for this release would be installed along with it.
rm -f "dist/${package}_"*"+deb${debian_number}_${arch}.deb"
dpkg-deb --root-owner-group --build "$tree" "$deb" >&2
echo "$deb"
