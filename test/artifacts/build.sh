#!/usr/bin/env bash
# build.sh: build the artifacts the end-to-end tests install on test nodes.
#
# Idempotent and cached: every artifact is rebuilt only when its recipe (a
# line recorded next to it) changes or its tarball is missing, so a second run
# costs a few sha256 sums. Each tarball is built in a temp dir and renamed into
# place, so a killed run never leaves a half-written artifact. A flock on the
# cache dir lets parallel test binaries call this at once: one builds, the
# others wait and then reuse.
#
# Output, in $DROVER_TEST_CACHE/artifacts (default /var/cache/drover-test/artifacts):
#   <name>-<version>.tar.gz          the artifact
#   <name>-<version>.tar.gz.sha256   its sha256, in sha256sum format
#   index.tsv                        key<TAB>version<TAB>sha256<TAB>path, one line per artifact
# The index is also printed on stdout.
#
# Artifacts:
#   node_exporter-1.8.2, node_exporter-1.9.1  built with `go install` through the Go module
#       proxy; tarball holds bin/node_exporter at top level.
#   zookeeper   Debian's zookeeper package made relocatable: lib/*.jar (its jars and the
#       jars their manifests' Class-Path reach, plus slf4j-simple so logs go to stderr),
#       bin/zk-run, conf/zoo.cfg.example. Version is the package's upstream version.
#   etcd-<v>, etcd-<v>+drover.2  Debian's etcd and etcdctl under a top folder, as
#       etcd's release tarballs are (two labels of one binary, for an upgrade).
#   failing-1.0 bin/failing exits 1 at once (for failed-install / health-gate tests).
#   wrong-checksum  index entry pointing at node_exporter-1.9.1 with a sha256 that does
#       not match it (for checksum-failure tests). Also written to wrong-checksum.sha256.
#
# Needs: go, tar, gzip, sha256sum, flock, unzip, dpkg-query, and the zookeeper package.
set -euo pipefail

# Bump when a recipe below changes in a way its recipe line does not capture.
RECIPE_VERSION=1
# Fixed mtime and ownership make a rebuild of the same inputs byte-identical.
TAR_MTIME=@1704067200

cache="${DROVER_TEST_CACHE:-/var/cache/drover-test}/artifacts"

die() { echo "build.sh: $*" >&2; exit 1; }

for tool in go tar gzip sha256sum flock unzip dpkg-query; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (make test installs the test tools)"
done

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# Leftovers of a killed run; safe to remove because we hold the lock.
rm -rf "$cache"/.build.*

# pack DIR OUT: a deterministic tar.gz of DIR's top-level entries (no leading dir).
pack() {
	local dir=$1 out=$2
	(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort) |
		tar --sort=name --mtime="$TAR_MTIME" --owner=0 --group=0 --numeric-owner \
			--format=gnu --mode='u+rwX,go+rX,go-w' -C "$dir" -cf - -T - |
		gzip -n -9 >"$out"
}

# finish NAME TMPTAR RECIPE: move a built tarball and its sha256 and recipe into place.
finish() {
	local name=$1 tmp=$2 recipe=$3
	(cd "$(dirname "$tmp")" && sha256sum "$(basename "$tmp")") | sed "s/ .*\$/  $name/" >"$cache/.build.sha"
	mv -f "$tmp" "$cache/$name"
	mv -f "$cache/.build.sha" "$cache/$name.sha256"
	printf '%s\n' "$recipe" >"$cache/$name.recipe"
}

# fresh NAME RECIPE: true when NAME exists and was built from RECIPE.
fresh() {
	[[ -f "$cache/$1" && -f "$cache/$1.sha256" && -f "$cache/$1.recipe" ]] &&
		[[ "$(cat "$cache/$1.recipe")" == "$2" ]]
}

sha_of() { cut -d' ' -f1 <"$cache/$1.sha256"; }

# Go needs a cache and module dir even where HOME is unset (CI strips env).
export GOCACHE="${GOCACHE:-$(go env GOCACHE 2>/dev/null || true)}"
[[ -n "$GOCACHE" ]] || export GOCACHE="$cache/../gocache"
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE 2>/dev/null || true)}"
[[ -n "$GOMODCACHE" ]] || export GOMODCACHE="$cache/../gomodcache"
goversion=$(go env GOVERSION)

build_node_exporter() {
	local v=$1 name="node_exporter-$1.tar.gz"
	local pkg=github.com/prometheus/common/version
	local ldflags="-s -w -X $pkg.Version=$v -X $pkg.Revision=drover-test -X $pkg.Branch=HEAD -X $pkg.BuildUser=drover -X $pkg.BuildDate=20240101-00:00:00"
	local recipe="v$RECIPE_VERSION node_exporter@v$v $goversion CGO_ENABLED=0 -trimpath $ldflags"
	fresh "$name" "$recipe" && return
	echo "build.sh: building $name" >&2
	local tmp
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	mkdir -p "$tmp/stage/bin"
	# Run outside any module so the drover go.mod does not interfere; static so it
	# runs on any node whatever its libc.
	(cd "$tmp" && GOBIN="$tmp/stage/bin" CGO_ENABLED=0 GOFLAGS="-trimpath" GOTOOLCHAIN=local \
		go install -ldflags "$ldflags" "github.com/prometheus/node_exporter@v$v")
	pack "$tmp/stage" "$tmp/out.tar.gz"
	finish "$name" "$tmp/out.tar.gz" "$recipe"
	rm -rf "$tmp"
}

# manifest_classpath JAR: the Class-Path entries of JAR's manifest, one per line,
# resolved against the jar's directory.
manifest_classpath() {
	local jar=$1 dir
	dir=$(dirname "$jar")
	# Manifest lines are wrapped at 72 bytes with a leading space on continuations.
	unzip -p "$jar" META-INF/MANIFEST.MF 2>/dev/null | tr -d '\r' |
		awk '/^ / { buf = buf substr($0, 2); next } { if (buf != "") print buf; buf = $0 } END { if (buf != "") print buf }' |
		sed -n 's/^Class-Path: *//p' | tr ' ' '\n' | sed '/^$/d' |
		while read -r entry; do
			case $entry in
			/*) printf '%s\n' "$entry" ;;
			*) printf '%s\n' "$dir/$entry" ;;
			esac
		done
}

build_zookeeper() {
	local debver upver name recipe
	debver=$(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null) ||
		die "the zookeeper package is not installed (make test installs it)"
	upver=${debver#*:}
	upver=${upver%%-*}
	upver=${upver%%+*}
	name="zookeeper-$upver.tar.gz"
	recipe="v$RECIPE_VERSION zookeeper deb $debver $(sha256sum "$0" | cut -c1-16)"
	ZK_NAME=$name ZK_VERSION=$upver
	fresh "$name" "$recipe" && return
	echo "build.sh: building $name" >&2
	local tmp stage
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	stage="$tmp/stage"
	mkdir -p "$stage/bin" "$stage/lib" "$stage/conf"

	# Walk the Class-Path graph from the server jar; slf4j-simple is the logging
	# binding (libslf4j-java is a dependency of the package) so logs reach stderr.
	local -a queue=(/usr/share/java/zookeeper.jar /usr/share/java/slf4j-simple.jar)
	local -A seen=()
	local jar real entry
	while ((${#queue[@]})); do
		jar=${queue[0]}
		queue=("${queue[@]:1}")
		real=$(readlink -f "$jar" || true)
		if [[ -z "$real" || ! -f "$real" ]]; then
			echo "build.sh: zookeeper: classpath entry $jar missing, skipped" >&2
			continue
		fi
		[[ -n "${seen[$real]:-}" ]] && continue
		seen[$real]=1
		cp "$real" "$stage/lib/"
		while read -r entry; do queue+=("$entry"); done < <(manifest_classpath "$real")
	done
	[[ -f "$stage/lib/$(basename "$(readlink -f /usr/share/java/zookeeper.jar)")" ]] ||
		die "zookeeper: server jar not found"

	cat >"$stage/bin/zk-run" <<'EOF'
#!/bin/sh
# zk-run: run a ZooKeeper server from this relocatable tree.
# Reads <dir>/conf/zoo.cfg, where <dir> is the parent of this script's directory.
# Creates dataDir and, if <dir>/conf/myid exists, copies it to dataDir/myid.
# Relative paths in zoo.cfg are relative to <dir>. Defaults keep the JVM small and
# the admin server (an HTTP listener on 0.0.0.0:8080) off; zoo.cfg overrides both
# (admin.enableServer, 4lw.commands.whitelist), JAVA_OPTS replaces the heap default.
set -eu
dir=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd -P)
cd "$dir"
cfg="$dir/conf/zoo.cfg"
if [ ! -r "$cfg" ]; then
	echo "zk-run: $cfg not found" >&2
	exit 2
fi
datadir=$(sed -n 's/^[[:space:]]*dataDir[[:space:]]*=[[:space:]]*//p' "$cfg" | tail -n 1 | sed 's/[[:space:]]*$//')
if [ -n "$datadir" ]; then
	mkdir -p "$datadir"
	if [ -r "$dir/conf/myid" ]; then
		tr -d ' \t\r\n' <"$dir/conf/myid" >"$datadir/myid.tmp"
		echo >>"$datadir/myid.tmp"
		mv -f "$datadir/myid.tmp" "$datadir/myid"
	fi
fi
cp=
for jar in "$dir"/lib/*.jar; do
	cp="${cp:+$cp:}$jar"
done
# shellcheck disable=SC2086 # JAVA_OPTS is a list of options.
exec "${JAVA:-java}" ${JAVA_OPTS--Xmx256m -XX:+UseSerialGC} \
	-Dzookeeper.admin.enableServer=false \
	-Dzookeeper.4lw.commands.whitelist=srvr,ruok,mntr,stat \
	-cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
EOF
	chmod 0755 "$stage/bin/zk-run"
	cat >"$stage/conf/zoo.cfg.example" <<'EOF'
# Copy to zoo.cfg. Bind every listener to the node's own address on shared-netns test nodes.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=data
clientPort=2181
clientPortAddress=127.0.2.1
quorumListenOnAllIPs=false
# server.1=127.0.2.1:2888:3888
EOF
	printf '%s\n' "$debver" >"$stage/conf/debian-version"
	pack "$stage" "$tmp/out.tar.gz"
	finish "$name" "$tmp/out.tar.gz" "$recipe"
	rm -rf "$tmp"
}

build_failing() {
	local name=failing-1.0.tar.gz recipe="v$RECIPE_VERSION failing 1.0"
	fresh "$name" "$recipe" && return
	local tmp
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	mkdir -p "$tmp/stage/bin"
	printf '#!/bin/sh\necho "failing: exits 1 on purpose" >&2\nexit 1\n' >"$tmp/stage/bin/failing"
	chmod 0755 "$tmp/stage/bin/failing"
	pack "$tmp/stage" "$tmp/out.tar.gz"
	finish "$name" "$tmp/out.tar.gz" "$recipe"
	rm -rf "$tmp"
}

# build_etcd LABEL: Debian's etcd-server and etcd-client binaries as etcd's own
# release tarball lays them out, under a top folder (etcd-vX-linux-amd64/etcd,
# etcdctl), for artifact.stripComponents. Two labels of the one binary stand
# in for two releases in the upgrade test. Skipped, with a note, when the
# packages are not installed (only the lifecycle test needs it).
ETCD_KEYS=()
build_etcd() {
	local label=$1 debver upver name recipe top
	debver=$(dpkg-query -W -f='${Version}' etcd-server 2>/dev/null) &&
		dpkg-query -W -f='${Version}' etcd-client >/dev/null 2>&1 || {
		echo "build.sh: etcd-server or etcd-client not installed: etcd artifacts skipped" >&2
		return 0
	}
	upver=${debver#*:}
	upver=${upver%%-*}
	upver=${upver%%+*}
	name="etcd-$upver$label.tar.gz"
	recipe="v$RECIPE_VERSION etcd deb $debver label=$label"
	ETCD_KEYS+=("etcd-$upver$label")
	if ! fresh "$name" "$recipe"; then
		echo "build.sh: building $name" >&2
		local tmp
		tmp=$(mktemp -d "$cache/.build.XXXXXX")
		top="$tmp/stage/etcd-v$upver$label-linux-amd64"
		mkdir -p "$top"
		cp /usr/bin/etcd /usr/bin/etcdctl "$top/"
		printf 'etcd %s (Debian %s), packed by drover build.sh\n' "$upver$label" "$debver" >"$top/README-drover"
		pack "$tmp/stage" "$tmp/out.tar.gz"
		finish "$name" "$tmp/out.tar.gz" "$recipe"
		rm -rf "$tmp"
	fi
}

build_node_exporter 1.8.2
build_node_exporter 1.9.1
build_etcd ""
build_etcd "+drover.2"
build_zookeeper
build_failing

# A well-formed sha256 that is not the tarball's: fixed, so tests can name it.
wrong=$(printf 'drover-test: not the sha256 of node_exporter-1.9.1.tar.gz' | sha256sum | cut -d' ' -f1)
[[ "$wrong" != "$(sha_of node_exporter-1.9.1.tar.gz)" ]] || die "wrong checksum collides"
printf '%s  node_exporter-1.9.1.tar.gz\n' "$wrong" >"$cache/wrong-checksum.sha256"

{
	printf 'node_exporter-1.8.2\t1.8.2\t%s\t%s\n' "$(sha_of node_exporter-1.8.2.tar.gz)" "$cache/node_exporter-1.8.2.tar.gz"
	printf 'node_exporter-1.9.1\t1.9.1\t%s\t%s\n' "$(sha_of node_exporter-1.9.1.tar.gz)" "$cache/node_exporter-1.9.1.tar.gz"
	printf 'zookeeper\t%s\t%s\t%s\n' "$ZK_VERSION" "$(sha_of "$ZK_NAME")" "$cache/$ZK_NAME"
	printf 'failing-1.0\t1.0\t%s\t%s\n' "$(sha_of failing-1.0.tar.gz)" "$cache/failing-1.0.tar.gz"
	printf 'wrong-checksum\t1.9.1\t%s\t%s\n' "$wrong" "$cache/node_exporter-1.9.1.tar.gz"
	for k in "${ETCD_KEYS[@]}"; do
		printf '%s\t%s\t%s\t%s\n' "$k" "${k#etcd-}" "$(sha_of "$k.tar.gz")" "$cache/$k.tar.gz"
	done
} >"$cache/.index.tmp"
mv -f "$cache/.index.tmp" "$cache/index.tsv"
cat "$cache/index.tsv"
