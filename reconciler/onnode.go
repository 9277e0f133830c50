package reconciler

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
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
// pipe, stat -c, mv -T, sync FILE), flock(1) from util-linux, tar with
// gzip, sha256sum, curl or wget for URL artifacts, systemctl for units.
//
// Values reach scripts only through inventory.Quote; file contents and
// artifacts only through stdin.

// Exit codes the scripts use, so the gate can tell failures apart
// (sysexits.h values, clear of sh's and coreutils' own 1, 2, 126, 127).
const (
	exitChecksum = 65 // EX_DATAERR: an artifact or file did not match its sha256
	exitMissing  = 69 // EX_UNAVAILABLE: a tool, cache file or package is missing
	exitLocked   = 75 // EX_TEMPFAIL: another action holds the node lock
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
// put DIR PATH TMP MODE LEN SHA reads the next LEN bytes of stdin and
// makes PATH hold them with MODE, unless it already does: then the bytes
// are read and dropped, so the files after it stay in step. The new
// content goes to TMP (same directory, created private), is checked
// against SHA (a cut-off stream is never renamed into place), chmod'ed,
// synced, and renamed over PATH.
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
put() {
	if [ -f "$2" ] && [ "$(stat -c %a -- "$2")" = "$4" ] && is_sha "$2" "$6"; then
		head -c "$5" > /dev/null
		rmpath "$3"
		return 0
	fi
	mkdirp "$1"
	rmpath "$3"
	umask 077
	head -c "$5" > "$3"
	umask 022
	if ! is_sha "$3" "$6"; then
		rm -f -- "$3"
		echo "short or corrupt content received for $2" >&2
		exit 65
	fi
	chmod "$4" "$3"
	sync -- "$3"
	mv -fT -- "$3" "$2"
	echo changed
}
`

// scriptHead is the start of every script: strict mode, a known umask and
// the install root in $root.
func scriptHead(root string) string {
	return "set -eu\numask 022\nroot=" + inventory.Quote(root) + "\n" + shFuncs
}

// lockedPreamble starts a mutating script: it creates the install root if
// needed and holds an exclusive flock on <root>/lock for the rest of the
// script, giving up with exit 75 after wait.
func lockedPreamble(root string, wait time.Duration) string {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return scriptHead(root) + fmt.Sprintf(`[ -d "$root" ] || mkdir -p -- "$root"
command -v flock > /dev/null 2>&1 || { echo "flock(1) not found on the node: install util-linux" >&2; exit 69; }
exec 9>> "$root/lock"
flock -w %d 9 || { echo "another drover action holds $root/lock" >&2; exit 75; }
`, secs)
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
func pruneCacheSnippet(keep []string, exclude string) string {
	return fmt.Sprintf(`keep=" %s "
for r in "$root"/receipts/*.json; do
	[ -f "$r" ] || continue
	[ "$r" = "$root/receipts/"%s.json ] && continue
	keep="$keep $(sed -n 's/.*"artifactSha256":"\([0-9a-f]*\)".*/\1/p' "$r" || true) "
done
for f in "$root"/cache/* "$root"/cache/.[!.]*; do
	[ -e "$f" ] || continue
	n=${f##*/}
	case "$n" in
	*.tar.gz) s=${n%%.tar.gz}; case "$keep" in *" $s "*) continue ;; esac ;;
	esac
	rm -rf -- "$f"
	echo changed
done
`, strings.Join(keep, " "), inventory.Quote(exclude))
}
