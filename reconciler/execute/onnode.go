package execute

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// The on-node half of the actions: small POSIX sh scripts, one per step.
//
// Every mutating script starts with lockedPreamble, which takes an
// exclusive flock(1) on <installRoot>/lock ("exec 9>>lock; flock -w N 9",
// held until the script exits; opened for append so the lock file is
// never truncated or touched), so two drovers, or one drover and a
// cut-off session still running, never interleave inside a step. The lock
// is per step, not per action (an action is a sequence of separate SSH
// sessions); the controller runs one action per node at a time, and the
// lock keeps a second drover, or a session cut off from a killed one but
// still running on the node, from writing at the same moment. Every script checks before it
// acts, writes through a temp name plus rename(2), and prints the line
// "changed" when it altered the node, so a step run twice is a no-op the
// second time and the log can say what really changed.
//
// Assumptions about the node (Debian and any systemd distro): dash or
// another POSIX sh, GNU coreutils (head -c reads exactly N bytes from a
// pipe, stat -c, mv -T, sync FILE, readlink -m with several operands),
// flock(1) from util-linux, GNU tar with gzip, sha256sum, curl or wget
// for URL artifacts, systemctl for units.
//
// Values reach scripts only through inventory.Quote; file contents and
// artifacts only through stdin.

// Exit codes the scripts use, so the gate can tell failures apart
// (sysexits.h values, clear of sh's and coreutils' own 1, 2, 126, 127).
const (
	exitChecksum = 65 // EX_DATAERR: an artifact or file did not match its sha256
	exitMissing  = 69 // EX_UNAVAILABLE: a tool, cache file or package is missing
	exitLocked   = 75 // EX_TEMPFAIL: another action holds the node lock
	exitRefused  = 77 // EX_NOPERM: a write would leave drover's paths, or the root is not drover's
)

// changedMark is the stdout line a script prints when it altered the node.
const changedMark = "changed"

// shFuncs are the helpers every script may call.
//
// is_sha FILE SHA succeeds when FILE is a regular file whose sha256 is
// SHA, and leaves the sha256 it found in $got. The file is read through
// stdin, so odd names never reach sha256sum's escaped output, and no
// pipe or extra subshell is forked.
//
// rmpath PATH... removes each PATH that is there, and mkdirp DIR makes
// DIR unless it is there: most of the time there is nothing to do, and a
// test costs no process where rm or mkdir would (a node pays for every
// fork and exec, on a small VM a few ms each).
//
// within BASE DIR succeeds when DIR, every symbolic link in it resolved
// on the node (readlink -m: parts that do not exist yet are taken as
// they are), is BASE or inside it (BASE resolved too); else it says so
// on stderr. It costs a process, so scripts call it only on the way to a
// write, never when there is nothing to do.
//
// put BASE DIR PATH TMP MODE LEN SHA reads the next LEN bytes of stdin and
// makes PATH hold them with MODE, unless it already does: then the bytes
// are read and dropped, so the files after it stay in step. The new
// content goes to TMP (same directory, created private), is checked
// against SHA (a cut-off stream is never renamed into place), chmod'ed,
// synced, and renamed over PATH (rename(2) replaces a link at PATH, it
// never writes through it). With a BASE (the version dir the file lives
// in), DIR must be within it and a link at PATH is replaced even when
// what it points at holds the content: an artifact's links never lead a
// write out of its version dir. Without one (a file the manifest names
// by its absolute path) the path is the manifest's to choose.
const shFuncs = `is_sha() {
	got=
	[ -f "$1" ] || return 1
	set -- "$2" $(sha256sum < "$1")
	got=$2
	[ "$got" = "$1" ]
}
rmpath() {
	for _rp; do
		if [ -e "$_rp" ] || [ -L "$_rp" ]; then rm -rf -- "$_rp"; fi
	done
}
mkdirp() {
	[ -d "$1" ] || mkdir -p -- "$1"
}
within() {
	_wr=$(readlink -m -- "$1" "$2") || { echo "cannot resolve $2 on the node" >&2; return 1; }
	_wb=${_wr%%"
"*}
	_wd=${_wr#*"
"}
	case "$_wd" in "$_wb" | "$_wb"/*) return 0 ;; esac
	echo "refused: $2 leads out of $1 through a symbolic link (to $_wd); drover writes only inside its own paths" >&2
	return 1
}
put() {
	if [ -f "$3" ] && { [ -z "$1" ] || [ ! -L "$3" ]; } && [ "$(stat -c %a -- "$3")" = "$5" ] && is_sha "$3" "$7"; then
		head -c "$6" > /dev/null
		rmpath "$4"
		return 0
	fi
	if [ -n "$1" ]; then within "$1" "$2" || exit 77; fi
	mkdirp "$2"
	rmpath "$4"
	umask 077
	head -c "$6" > "$4"
	umask 022
	if ! is_sha "$4" "$7"; then
		rm -f -- "$4"
		echo "short or corrupt content received for $3" >&2
		exit 65
	fi
	chmod "$5" "$4"
	sync -- "$4"
	mv -fT -- "$4" "$3"
	echo changed
}
`

// scriptHead is the start of every script: strict mode, a known umask and
// the install root in $root.
func scriptHead(root string) string {
	return "set -eu\numask 022\nroot=" + inventory.Quote(root) + "\n" + shFuncs
}

// lockedPreamble starts a mutating script: it makes sure the install
// root is drover's, creates it if needed and holds an exclusive flock on
// <root>/lock for the rest of the script, giving up with exit 75 after
// wait.
//
// drover deletes what it no longer needs in its root (old versions,
// cached artifacts), so it acts only in a root it has marked with
// manifests.RootMarker. A root without the mark is taken (and marked,
// under the lock) when it is missing or empty, or when it holds drover's
// lock and nothing but drover's names (a root an earlier drover made,
// before the mark existed); anything else is refused with exit 77 before
// a byte is written there. The usual case, a marked root, costs a test.
func lockedPreamble(root string, wait time.Duration) string {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return scriptHead(root) + fmt.Sprintf(`if [ ! -f "$root/"%[2]s ] && [ -d "$root" ]; then
	_lock= _seen= _other=
	for _e in "$root"/* "$root"/.[!.]* "$root"/..?*; do
		[ -e "$_e" ] || [ -L "$_e" ] || continue
		[ -n "$_seen" ] || _seen=${_e##*/}
		case "${_e##*/}" in
		lock) _lock=1 ;;
		packages | active | receipts | cache | .inflight) ;;
		*) _other=${_e##*/}; break ;;
		esac
	done
	if [ -n "$_other" ] || { [ -n "$_seen" ] && [ -z "$_lock" ]; }; then
		[ -n "$_other" ] || _other="$_seen, without drover's lock"
		echo "refused: install root $root is not drover's: it holds what drover did not write ($_other) and no $root/"%[2]s"; give installRoot a new or empty directory" >&2
		exit 77
	fi
fi
[ -d "$root" ] || mkdir -p -- "$root"
command -v flock > /dev/null 2>&1 || { echo "flock(1) not found on the node: install util-linux" >&2; exit 69; }
exec 9>> "$root/lock"
flock -w %[1]d 9 || { echo "another drover action holds $root/lock" >&2; exit 75; }
[ -f "$root/"%[2]s ] || printf '%%s\n' "drover's install root: drover deletes what it no longer needs in here" > "$root/"%[2]s
`, secs, manifests.RootMarker)
}

// shList quotes each value and joins them with spaces.
func shList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = inventory.Quote(v)
	}
	return strings.Join(q, " ")
}

// shCasePattern is a case pattern matching exactly the given words, or a
// pattern that matches nothing when there are none.
func shCasePattern(words []string) string {
	if len(words) == 0 {
		return "''" // matches only the empty name, which no entry has
	}
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = inventory.Quote(w)
	}
	return strings.Join(q, "|")
}

// pruneCacheSnippet deletes every cache entry (and stray .part upload)
// whose sha256 is neither in keep nor the artifact of a receipt on the
// node, ignoring the receipt of exclude (the component being removed).
// Only names drover gives the files it puts there (<sha256>.tar.gz,
// .<sha256>.tar.gz.part) are pruned: anything else someone put in the
// cache dir is not drover's to delete.
func pruneCacheSnippet(keep []string, exclude string) string {
	return fmt.Sprintf(`keep=" %s "
for r in "$root"/receipts/*.json; do
	[ -f "$r" ] || continue
	[ "$r" = "$root/receipts/"%s.json ] && continue
	keep="$keep $(sed -n 's/.*"artifactSha256":"\([0-9a-f]*\)".*/\1/p' "$r" || true) "
done
for f in "$root"/cache/*.tar.gz "$root"/cache/.*.tar.gz.part; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	n=${f##*/}
	s=${n#.}
	s=${s%%.part}
	s=${s%%.tar.gz}
	case "$s" in *[!0-9a-f]*) continue ;; esac
	[ ${#s} -eq 64 ] || continue
	case "$n" in *.part) ;; *) case "$keep" in *" $s "*) continue ;; esac ;; esac
	rm -rf -- "$f"
	echo changed
done
`, strings.Join(keep, " "), inventory.Quote(exclude))
}
