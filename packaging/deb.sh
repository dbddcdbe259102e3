#!/usr/bin/env bash
# Builds release-agent_<version>_<arch>.deb with dpkg-deb, no debhelper:
#   both binaries (release build, Swift runtime linked in) in /usr/bin, the systemd template
#   unit release-agent@.service, the sample hooks in /usr/share/release-agent/hooks, the
#   example config and unit in /usr/share/doc/release-agent/, man pages from
#   swift-argument-parser's generate-manual plugin, bash/zsh/fish completions from
#   --generate-completion-script, Depends from dpkg-shlibdeps; then lintian, failing on errors.
# usage: packaging/deb.sh [--out DIR]     (default DIR: .build-deb; prints the .deb's path last)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-deb
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || { echo "Error: --out needs a directory; usage: packaging/deb.sh [--out DIR]" >&2; exit 2; }
               out=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "Error: unknown option '$1'; usage: packaging/deb.sh [--out DIR]" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb dpkg-shlibdeps gzip strip; do
    command -v "$tool" >/dev/null || { echo "Error: $tool is not installed; apt-get install -y dpkg-dev binutils" >&2; exit 1; }
done

# One version string: the one --version, the man pages and release_agent_build_info print.
version=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/ReleaseAgent/Support/Version.swift)
[ -n "$version" ] || { echo "Error: no version in Sources/ReleaseAgent/Support/Version.swift" >&2; exit 1; }
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-release-agent maintainers <release-agent@example.org>}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/stage
rm -rf "$stage" "$out/shlibs"
mkdir -p "$stage/DEBIAN"

echo "deb.sh: man pages (generate-manual plugin; a debug build, the one swift test uses too)" >&2
swift package generate-manual --configuration debug --multi-page >&2
echo "deb.sh: release build with the Swift runtime linked in (servers have no toolchain)" >&2
swift build -c release --static-swift-stdlib >&2
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

install -d "$stage/usr/bin"
for exe in release-agent release-agent-full; do
    install -m 0755 "$bin/$exe" "$stage/usr/bin/$exe"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$exe"
    # Everything a binary loads must come from Debian's packages, never from a toolchain.
    if ldd "$stage/usr/bin/$exe" | grep -E 'not found|/opt/|/usr/local/' >&2; then
        echo "Error: $exe needs a library outside the system (above); build with --static-swift-stdlib" >&2
        exit 1
    fi
done
"$stage/usr/bin/release-agent" --version | grep -qx "$version" \
    || { echo "Error: release-agent --version does not say $version" >&2; exit 1; }

install -D -m 0644 packaging/release-agent@.service "$stage/lib/systemd/system/release-agent@.service"

share=$stage/usr/share/release-agent
install -d "$share/hooks"
cp -R hooks/. "$share/hooks/"
find "$share/hooks" -type d -exec chmod 0755 {} +
find "$share/hooks" -type f -exec chmod 0644 {} +
find "$share/hooks" -type f -exec sh -c 'head -c2 "$1" | grep -q "#!" && chmod 0755 "$1"' _ {} \;

# The bundled demo (releases.example/app and its activate hook), to try the package out.
install -d "$share/demo/app" "$share/demo/hooks"
install -m 0644 releases.example/app/app.py "$share/demo/app/"
install -m 0755 releases.example/app/build.sh "$share/demo/app/"
install -m 0755 releases.example/hooks/activate "$share/demo/hooks/"

doc=$stage/usr/share/doc/release-agent
install -d "$doc/examples"
install -m 0644 README.md RELIABILITY.md "$doc/"
install -m 0644 releases.example/release-agent.toml releases.example/release-agent.cron \
    releases.example/release-agent.service "$doc/examples/"
gzip -9n -c CHANGELOG.md > "$doc/changelog.gz"
cat > "$out/changelog.Debian" <<CHANGES
release-agent ($version) unstable; urgency=medium

  * Built by packaging/deb.sh; the changes are in changelog.gz (CHANGELOG.md).

 -- $maintainer  $(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
CHANGES
gzip -9n -c "$out/changelog.Debian" > "$doc/changelog.Debian.gz"
cat > "$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: release-agent
Comment: No licence has been chosen for release-agent yet; until its authors choose one,
 they keep all rights. The Swift runtime and the Swift packages linked into the binaries
 (swift-argument-parser, swift-nio, hummingbird, swift-crypto and others) are Apache-2.0
 and keep their own notices; TOMLKit (toml++) is MIT.

Files: *
Copyright: 2026 the release-agent authors
License: none-chosen
 No licence has been granted yet.
COPYRIGHT

# swift-nio-extras (under AsyncHTTPClient, the etcd client's HTTP) compiles its own copy of
# zlib (CNIOExtrasZlib) into release-agent-full; it cannot use Debian's zlib without patching
# that package, so the tag is overridden here, with this reason, rather than hidden.
install -d "$stage/usr/share/lintian/overrides"
cat > "$stage/usr/share/lintian/overrides/release-agent" <<'OVERRIDES'
# swift-nio-extras, linked in through AsyncHTTPClient, compiles its own zlib (CNIOExtrasZlib).
release-agent: embedded-library zlib [usr/bin/release-agent-full]
OVERRIDES
chmod 0644 "$stage/usr/share/lintian/overrides/release-agent"

man=$stage/usr/share/man/man1
install -d "$man"
for page in .build/plugins/GenerateManual/outputs/release-agent/*.1; do
    gzip -9n -c "$page" > "$man/$(basename "$page").gz"
done
ln -s release-agent.1.gz "$man/release-agent-full.1.gz"

completions=$stage/usr/share
install -d "$completions/bash-completion/completions" "$completions/zsh/vendor-completions" \
    "$completions/fish/vendor_completions.d"
"$stage/usr/bin/release-agent" --generate-completion-script bash | sed '1{/^#!/d}' \
    > "$completions/bash-completion/completions/release-agent"
"$stage/usr/bin/release-agent" --generate-completion-script zsh > "$completions/zsh/vendor-completions/_release-agent"
"$stage/usr/bin/release-agent" --generate-completion-script fish > "$completions/fish/vendor_completions.d/release-agent.fish"

# Depends from the libraries the binaries load (dpkg-shlibdeps reads debian/control).
mkdir -p "$out/shlibs/debian"
printf 'Source: release-agent\n\nPackage: release-agent\nArchitecture: any\n' > "$out/shlibs/debian/control"
depends=$(cd "$out/shlibs" && dpkg-shlibdeps -O -e"$stage/usr/bin/release-agent" -e"$stage/usr/bin/release-agent-full" \
    2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "Error: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: release-agent
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends, adduser
Recommends: git, openssh-client, polkitd
Suggests: gpgv, nginx | caddy
Section: admin
Priority: optional
Description: deploy a web service from a git branch, on its own server
 release-agent follows one branch of a git repository, fetches each new
 commit with libgit2 into releases/<sha>, builds it there, health-checks it,
 swaps the current symlink atomically, keeps the newest releases and rolls
 back in one command. It is triggered by a GitHub, GitLab, Gitea or Forgejo
 webhook (serve, with the systemd unit release-agent@.service), by cron
 (poll) or by hand (deploy, rollback).
CONTROL
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# The system user the release-agent@ units run as; the roots are its state directories.
set -e
if [ "$1" = configure ]; then
    if ! getent passwd release-agent >/dev/null; then
        adduser --system --group --quiet --home /var/lib/release-agent --no-create-home release-agent
    fi
    mkdir -p /etc/release-agent
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        # An upgrade ($2 is the old version): the running instances go on the new binary, as
        # dh_installsystemd does. Safe because no app lives in the agent's unit: the sample
        # hooks restart the app's own unit, or start it with systemd-run (README, "systemd").
        # SIGTERM lets a running deploy reach its safe point first (shutdown-grace).
        if [ -n "$2" ]; then
            for unit in $(systemctl list-units --plain --no-legend --state=active 'release-agent@*.service' \
                    | awk '{print $1}'); do
                deb-systemd-invoke try-restart "$unit" >/dev/null || true
            done
        fi
    fi
fi
exit 0
POSTINST
cat > "$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
exit 0
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

deb=$out/release-agent_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
if command -v lintian >/dev/null; then
    echo "deb.sh: lintian" >&2
    lintian --fail-on error --tag-display-limit 0 "$deb" >&2 \
        || { echo "Error: lintian reports errors in $deb (above)" >&2; exit 1; }
fi
echo "$deb"
