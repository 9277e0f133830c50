package execute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// The steps actions are made of. Each builds one script (onnode.go has
// the shared parts), runs it through the gate, and checks on the node
// before it acts. Step names are what logs, dry runs and errors show.

// noArtifact is what .complete holds for a component without an artifact.
const noArtifact = "none"

// artifactSHA is the lowercase sha256 of the wanted artifact, "" if none.
func (j *job) artifactSHA() string {
	if j.want == nil || (j.want.ArtifactPath == "" && j.want.ArtifactURL == "") {
		return ""
	}
	return strings.ToLower(j.want.ArtifactSHA256)
}

// completeMark is what a complete version dir's .complete holds: the
// artifact it was unpacked from, so a changed artifact under the same
// version is unpacked again.
func (j *job) completeMark() string {
	if s := j.artifactSHA(); s != "" {
		if n := j.want.ArtifactStrip; n > 0 {
			// Unpacked another way is another version dir.
			return s + " strip=" + strconv.Itoa(n)
		}
		return s
	}
	return noArtifact
}

// ensureDirs creates the install root's skeleton, 0755.
func (e *Executor) ensureDirs(ctx context.Context, j *job) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + `set -- "$root" "$root/packages" "$root/active" "$root/receipts" "$root/cache"
for d; do
	[ -d "$d" ] || { mkdir -p -- "$d"; echo changed; }
done
if [ "$(stat -c %a -- "$@")" != "755
755
755
755
755" ]; then
	chmod 0755 -- "$@"
	echo changed
fi
`
	_, err := e.step(ctx, j, "ensure dirs", script, nil)
	return err
}

// packageState is what inspectPackage found.
type packageState struct {
	// complete: the version dir is complete and from the wanted artifact.
	complete bool
	// cached: the artifact is in the cache with the right sha256.
	cached bool
}

// inspectPackage looks, without changing anything, at whether the version
// is already unpacked and the artifact already cached, so that neither is
// streamed or unpacked again.
func (e *Executor) inspectPackage(ctx context.Context, j *job) (packageState, error) {
	dst := manifests.VersionDir(e.InstallRoot, j.name, j.want.Version)
	script := scriptHead(e.InstallRoot) + fmt.Sprintf(`c=%s/.complete
if [ -f "$c" ] && [ "$(cat -- "$c")" = %s ]; then echo package-complete; exit 0; fi
`, inventory.Quote(dst), inventory.Quote(j.completeMark()))
	if sha := j.artifactSHA(); sha != "" {
		script += fmt.Sprintf(`f="$root/cache/"%s.tar.gz
if is_sha "$f" %s; then echo artifact-cached; fi
`, sha, sha)
	}
	out, err := e.query(ctx, j, "inspect package", script)
	if err != nil {
		return packageState{}, err
	}
	return packageState{complete: hasLine([]byte(out), "package-complete"), cached: hasLine([]byte(out), "artifact-cached")}, nil
}

// fetchArtifact puts the artifact into <root>/cache/<sha256>.tar.gz:
// streamed from the bootstrap host, or downloaded by the node. Either way
// it lands in a .part file that is checked with sha256sum on the node and
// only then renamed into place; a mismatch deletes it.
func (e *Executor) fetchArtifact(ctx context.Context, j *job) error {
	sha := j.artifactSHA()
	if sha == "" {
		return nil
	}
	w := j.want
	// The upload reads exactly the artifact's length (head -c), so that
	// in a batch it reads straight from the session (stepchain.go).
	var stdin io.Reader
	var size int64
	if w.ArtifactPath != "" && !e.DryRun {
		f, err := manifests.OpenRegular(w.ArtifactPath)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", w.ArtifactPath, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("artifact %s: %w", w.ArtifactPath, err)
		}
		size = fi.Size()
		stdin = newExactInput(f, size) // streamed, never read whole into memory; step closes it
	}
	src := w.ArtifactPath
	// The free space in the cache is compared with the artifact before
	// it is sent, and said when the write fails, so a full disk reads
	// as one ("… 2 MiB free, artifact 175 MiB"), not as a checksum
	// mismatch of a truncated file.
	drain := fmt.Sprintf("head -c %d > /dev/null; ", size)
	get := fmt.Sprintf(`kib() { if [ "$1" -ge 1024 ]; then echo "$(($1 / 1024)) MiB"; else echo "$1 KiB"; fi; }
space() { echo "$root/cache: $(kib "$free") free, artifact $(kib %[1]d)"; }
free=$(df -Pk "$root/cache" 2>/dev/null | { read -r _; read -r _ _ _ a _; echo "${a:-}"; }) || free=
case $free in ''|*[!0-9]*) free= ;; esac
if [ -n "$free" ] && [ "$free" -lt %[1]d ]; then %[2]secho "no space left on device ($(space))" >&2; exit 1; fi
if ! head -c %[3]d > "$t"; then
	free=$(df -Pk "$root/cache" 2>/dev/null | { read -r _; read -r _ _ _ a _; echo "${a:-0}"; }) || free=0
	echo "$(space)" >&2; exit 1
fi`, (size+1023)/1024, drain, size)
	name := "upload artifact"
	if w.ArtifactURL != "" {
		src, name, drain = w.ArtifactURL, "download artifact", ""
		get = `if command -v curl > /dev/null 2>&1; then
	curl -fsSL --retry 2 -o "$t" "$src" || { echo "download of $src failed" >&2; exit 1; }
elif command -v wget > /dev/null 2>&1; then
	wget -q -O "$t" "$src" || { echo "download of $src failed" >&2; exit 1; }
else
	echo "neither curl nor wget is on the node to download $src" >&2; exit 69
fi`
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`want=%s
src=%s
f="$root/cache/$want.tar.gz"
t="$root/cache/.$want.tar.gz.part"
if is_sha "$f" "$want"; then %sexit 0; fi
mkdirp "$root/cache"
trap 'rmpath "$t"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
rmpath "$t"
%s
if ! is_sha "$t" "$want"; then
	echo "checksum mismatch: expected $want, got $got for $src" >&2
	exit 65
fi
sync -- "$t"
mv -fT -- "$t" "$f"
echo changed
`, sha, inventory.Quote(src), drain, get)
	_, err := e.step(ctx, j, name, script, stdin)
	return err
}

// unpack makes packages/<c>/<v> complete: the artifact unpacked into
// packages/<c>/.<v>.tmp, the rendered files that live in the version dir
// written into it, .complete written last, and the whole dir renamed into
// place, so a half-unpacked dir is never taken for a complete one. What
// drover keeps in a version dir for a rollback is drover's to write: an
// artifact's own copies are dropped, or a rollback would install them.
//
// An artifact's symbolic links stay as they are (a tarball may link
// lib/libx.so -> /usr/lib/...), but no write of drover's goes through
// one that leads out of the version dir (put's BASE). tar itself never
// writes through a link it made: GNU tar extracts a link whose target is
// absolute or climbs with ".." as a placeholder file, made a link only
// once every member is out (TestHostileArtifactSymlinks checks the
// node's tar).
func (e *Executor) unpack(ctx context.Context, j *job) error {
	pkg := path.Join(e.InstallRoot, "packages", j.name)
	dst := path.Join(pkg, j.want.Version)
	tmp := path.Join(pkg, "."+j.want.Version+".tmp")
	var inDir []manifests.RenderedFile
	for _, f := range j.want.Files {
		if rel, ok := under(dst, f.Path); ok {
			f.Path = path.Join(tmp, rel)
			inDir = append(inDir, f)
		}
	}
	puts, stdin := putCommands(inDir, func(string) string { return tmp })
	// The artifact is not hashed again here: this action's inspect or
	// upload step has just checked it, and the cache only ever gets a
	// file by renaming a checked one into place.
	extract := ""
	if sha := j.artifactSHA(); sha != "" {
		extract = fmt.Sprintf(`a="$root/cache/"%s.tar.gz
[ -f "$a" ] || { echo "artifact $a is not in the cache" >&2; exit 69; }
tar -xzf "$a" -C "$tmp" --no-same-owner%s
`, sha, stripOption(j.want.ArtifactStrip))
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`pkg=%s
dst=%s
tmp=%s
old=%s
mark=%s
if [ -f "$dst/.complete" ] && [ "$(cat -- "$dst/.complete")" = "$mark" ]; then cat > /dev/null; exit 0; fi
mkdirp "$pkg"
rmpath "$tmp"
mkdir -- "$tmp"
%s%s%s
printf '%%s\n' "$mark" > "$tmp/.complete"
sync -f -- "$tmp"
if [ -e "$dst" ] || [ -L "$dst" ]; then rm -rf -- "$old"; mv -T -- "$dst" "$old"; fi
mv -T -- "$tmp" "$dst"
rmpath "$old"
echo changed
`, inventory.Quote(pkg), inventory.Quote(dst), inventory.Quote(tmp), inventory.Quote(path.Join(pkg, "."+j.want.Version+".old")),
		inventory.Quote(j.completeMark()), extract, dropReservedSnippet(), puts)
	_, err := e.step(ctx, j, "unpack", script, stdin)
	return err
}

// stripOption is tar's option for artifact.stripComponents, "" for none.
func stripOption(n int) string {
	if n <= 0 {
		return ""
	}
	return " --strip-components=" + strconv.Itoa(n)
}

// writeFiles makes every rendered file hold its content and mode,
// rewriting only those that differ, and deletes files an earlier receipt
// lists that the manifest no longer has (outside the packages dir, whose
// files go with their version). The version dir keeps a copy of those
// outside it for a rollback (files_keep.go).
func (e *Executor) writeFiles(ctx context.Context, j *job) error {
	wanted := map[string]bool{}
	for _, f := range j.want.Files {
		wanted[f.Path] = true
	}
	var stale []string
	if r := j.haveReceipt(); r != nil {
		for _, p := range r.Files {
			if !wanted[p] && e.outsidePackages(p) {
				stale = append(stale, p)
			}
		}
	}
	if len(j.want.Files) == 0 && len(stale) == 0 {
		return nil
	}
	keep, drop := e.keptFiles(j, stale)
	vdir := manifests.VersionDir(e.InstallRoot, j.name, j.want.Version)
	puts, stdin := putCommands(append(slices.Clip(j.want.Files), keep...), func(p string) string {
		if _, in := under(vdir, p); in {
			return vdir
		}
		return ""
	})
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + puts + deleteFilesSnippet(append(stale, drop...))
	_, err := e.step(ctx, j, "write files", script, stdin)
	return err
}

// outsidePackages reports whether p is a plain absolute path outside
// <root>/packages (so deleting it is the component's own business).
func (e *Executor) outsidePackages(p string) bool {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return false
	}
	_, in := under(path.Join(e.InstallRoot, "packages"), p)
	return !in && p != path.Join(e.InstallRoot, "packages")
}

// deleteFilesSnippet removes the given files if they are there, then
// each one's directory if that is left empty, unless it sits right under
// / (such as /srv): drover created it for the file, or it held nothing
// anyway. Directories further up are left alone.
func deleteFilesSnippet(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	var dirs []string
	for _, p := range paths {
		if d := path.Dir(p); strings.Count(d, "/") >= 2 && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	s := "for p in " + shList(paths) + `; do
	if [ -e "$p" ] || [ -L "$p" ]; then rm -f -- "$p"; echo changed; fi
done
`
	if len(dirs) > 0 {
		s += "for d in " + shList(dirs) + `; do
	if [ -d "$d" ] && rmdir -- "$d" 2> /dev/null; then echo changed; fi
done
`
	}
	return s
}

// putCommands builds one put call per file and the stdin stream that
// feeds them, file contents back to back in the same order. base names
// the version dir a file must stay within on the node ("" for a file
// the manifest names by its absolute path): every write of drover's
// into a version dir goes through here, so none follows a link out.
func putCommands(files []manifests.RenderedFile, base func(path string) string) (string, io.Reader) {
	var b strings.Builder
	var content []byte
	for _, f := range files {
		dir := path.Dir(f.Path)
		tmp := path.Join(dir, manifests.ReservedPrefix+manifests.SHA256Hex([]byte(f.Path))[:16]+".tmp")
		fmt.Fprintf(&b, "put %s %s %s %s %s %d %s\n", inventory.Quote(base(f.Path)), inventory.Quote(dir), inventory.Quote(f.Path), inventory.Quote(tmp),
			modeString(f.Mode), len(f.Content), f.Digest())
		content = append(content, f.Content...)
	}
	return b.String(), bytes.NewReader(content)
}

// modeString is a file mode as chmod takes it and stat -c %a prints it.
func modeString(m os.FileMode) string {
	bits := uint32(m) & 0o7777 // manifests.ParseMode keeps the raw octal bits
	if m&os.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		bits |= 0o1000
	}
	return strconv.FormatUint(uint64(bits), 8)
}

// dropReservedSnippet deletes from the version dir being built ($tmp)
// what an artifact brought under drover's own names (manifests.
// VersionDirReserved and any other .drover- name), links included,
// before drover writes its own there.
func dropReservedSnippet() string {
	s := "rmpath"
	for _, n := range manifests.VersionDirReserved {
		s += ` "$tmp/"` + inventory.Quote(n)
	}
	return s + ` "$tmp/"` + manifests.ReservedPrefix + "*\n"
}

// under reports whether p is inside dir, and its path relative to dir.
func under(dir, p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, dir+"/")
	return rel, ok && rel != ""
}

// syncUnit makes the unit file what the manifest wants; a component that
// no longer has a service loses its unit.
func (e *Executor) syncUnit(ctx context.Context, j *job) error {
	if j.want.Unit == nil {
		if !j.haveUnitFile() {
			return nil
		}
		if err := e.stopUnit(ctx, j); err != nil {
			return err
		}
		return e.deleteUnit(ctx, j)
	}
	return e.writeUnit(ctx, j)
}

// writeUnit writes drover-<c>.service atomically only when its sha256
// differs, and runs daemon-reload only then, or when a cut between rename
// and reload left systemd with an older text (NeedDaemonReload) or
// without the unit (LoadState not loaded).
func (e *Executor) writeUnit(ctx context.Context, j *job) error {
	unit := plan.UnitName(j.name)
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`u=%s
uf=%s
t=%s
want=%s
if is_sha "$uf" "$want"; then
	cat > /dev/null
	rm -f -- "$t"
	st=$(systemctl show -p LoadState -p NeedDaemonReload "$u" 2>/dev/null || true)
	case "$st" in *LoadState=loaded*) reload= ;; *) reload=1 ;; esac
	case "$st" in *NeedDaemonReload=yes*) reload=1 ;; esac
	if [ -n "$reload" ]; then
		systemctl daemon-reload
		echo changed
	fi
	exit 0
fi
mkdir -p -- "$(dirname -- "$uf")"
rm -f -- "$t"
cat > "$t"
if ! is_sha "$t" "$want"; then rm -f -- "$t"; echo "short or corrupt unit received for $uf" >&2; exit 65; fi
chmod 0644 -- "$t"
sync -- "$t"
mv -fT -- "$t" "$uf"
systemctl daemon-reload
echo changed
`, unit, inventory.Quote(path.Join(e.unitDir(), unit)), inventory.Quote(path.Join(e.unitDir(), "."+unit+".tmp")), manifests.SHA256Hex(j.want.Unit))
	_, err := e.step(ctx, j, "write unit", script, bytes.NewReader(j.want.Unit))
	return err
}

// switchActive points active/<c> at packages/<c>/<version> by renaming a
// fresh temp link over it (rename(2): the link is never missing), after
// checking that the version is complete.
func (e *Executor) switchActive(ctx context.Context, j *job, version string) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`link=%s
tmp=%s
target=%s
if [ ! -f %s ]; then echo "version %s of %s is not complete on the node" >&2; exit 69; fi
mkdirp "$root/active"
if [ -L "$link" ] && [ "$(readlink -- "$link")" = "$target" ]; then rmpath "$tmp"; exit 0; fi
rmpath "$tmp"
ln -sfn -- "$target" "$tmp"
mv -fT -- "$tmp" "$link"
echo changed
`, inventory.Quote(manifests.ActiveDir(e.InstallRoot, j.name)), inventory.Quote(path.Join(e.InstallRoot, "active", "."+j.name+".tmp")),
		inventory.Quote(path.Join("..", "packages", j.name, version)),
		inventory.Quote(path.Join(manifests.VersionDir(e.InstallRoot, j.name, version), ".complete")), version, j.name)
	_, err := e.step(ctx, j, "switch active", script, nil)
	return err
}

// restartUnit enables the unit if it is not, and restarts it, first
// clearing a failed state so that an earlier crash loop's start limit
// cannot refuse the restart (a rollback right after a failed upgrade
// needs exactly that). A unit systemd fails to (re)start is an unhealthy
// component.
func (e *Executor) restartUnit(ctx context.Context, j *job) error {
	if err := e.preStop(ctx, j); err != nil {
		return err
	}
	if err := e.startUnit(ctx, j); err != nil {
		return err
	}
	return e.hook(ctx, j, "postStart")
}

// startUnit is restartUnit's own step: enable, clear a failed state, restart.
func (e *Executor) startUnit(ctx context.Context, j *job) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`u=%s
if [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" != enabled ]; then
	systemctl enable --quiet "$u" >&2
	echo changed
fi
systemctl reset-failed "$u" > /dev/null 2>&1 || true
systemctl restart "$u" >&2
echo changed
`, plan.UnitName(j.name))
	_, err := e.step(ctx, j, "restart unit", script, nil)
	var se *StepError
	if errors.As(err, &se) && se.ExitCode != exitLocked {
		return fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	return err
}

// prune deletes the component's version dirs (and leftover temp dirs)
// other than keep, and cache entries no receipt or keepSHA refers to.
func (e *Executor) prune(ctx context.Context, j *job, keep, keepSHA []string) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`pkg=%s
if [ -d "$pkg" ]; then
	for d in "$pkg"/* "$pkg"/.[!.]* "$pkg"/..?*; do
		[ -e "$d" ] || [ -L "$d" ] || continue
		case "${d##*/}" in %s) continue ;; esac
		rm -rf -- "$d"
		echo changed
	done
fi
`, inventory.Quote(path.Join(e.InstallRoot, "packages", j.name)), shCasePattern(nonEmpty(keep))) + pruneCacheSnippet(nonEmpty(keepSHA), "")
	_, err := e.step(ctx, j, "prune", script, nil)
	return err
}

func nonEmpty(vals []string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// writeReceipt writes receipts/<c>.json atomically. It is the last step of
// every action that changes what is installed: until it is written, the
// next probe still sees the old truth and the action is run again.
func (e *Executor) writeReceipt(ctx context.Context, j *job, r any) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	data = append(data, '\n')
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`r="$root/receipts/"%s.json
t="$root/receipts/."%s.json.tmp
mkdirp "$root/receipts"
rmpath "$t"
cat > "$t"
if ! is_sha "$t" %s; then rm -f -- "$t"; echo "short or corrupt receipt received" >&2; exit 65; fi
sync -- "$t"
mv -fT -- "$t" "$r"
echo changed
`, j.name, j.name, manifests.SHA256Hex(data))
	_, err = e.step(ctx, j, "write receipt", script, bytes.NewReader(data))
	return err
}

// reloadUnit has systemd reload the running unit (ExecReload=), for a
// change only files with onChange: reload make; a unit that is not
// running is restarted instead (with its hooks), since it has nothing to
// reload into.
func (e *Executor) reloadUnit(ctx context.Context, j *job) error {
	if !j.unitActive() {
		return e.restartUnit(ctx, j)
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`u=%s
systemctl reload "$u" >&2
echo changed
`, plan.UnitName(j.name))
	_, err := e.step(ctx, j, "reload unit", script, nil)
	var se *StepError
	if errors.As(err, &se) && se.ExitCode != exitLocked {
		return fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	return err
}

// unitActive reports whether the last probe saw the unit running.
func (j *job) unitActive() bool {
	return j.have != nil && j.have.Unit.ActiveState == "active"
}

// preStop runs the preStop hook when the service is running: drover is
// about to stop or restart it.
func (e *Executor) preStop(ctx context.Context, j *job) error {
	if !j.unitActive() || j.stopped || j.drained {
		return nil
	}
	return e.hook(ctx, j, "preStop")
}

// drain runs preStop ahead of the restart, before the steps that change
// what the running service sees (climb). Its failure is a failed step,
// not a failed health gate: nothing of the service changed, so there is
// nothing to roll back.
func (e *Executor) drain(ctx context.Context, j *job) error {
	if !j.unitActive() || j.stopped || j.drained {
		return nil
	}
	if err := e.runHook(ctx, j, "preStop", j.hookFor("preStop")); err != nil {
		return err
	}
	j.drained = true
	return nil
}

// hook runs one of the component's hooks on the node, if it has it: the
// rendered argv from /, stdin empty, output to the step's stderr (so a
// failure carries it), under timeout(1). It is a step like any other
// (dry run, the gate), run in a session of its own after the steps held
// back before it, so its output is its own. A failing hook here (after a
// start, or before a remove) fails the action as a failed health gate
// does: the rollout rolls back or halts, with the hook's name and output
// in the reason. preStop ahead of a restart runs through drain instead.
func (e *Executor) hook(ctx context.Context, j *job, name string) error {
	if err := e.runHook(ctx, j, name, j.hookFor(name)); err != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	return nil
}

// runHook runs hook h, named name, as hook describes; nil runs nothing.
func (e *Executor) runHook(ctx context.Context, j *job, name string, h *manifests.Hook) error {
	if h == nil {
		return nil
	}
	secs := int(math.Ceil(h.Timeout.Get(time.Minute).Seconds()))
	if secs < 1 {
		secs = 1
	}
	argv := make([]string, len(h.Command))
	for i, a := range h.Command {
		argv[i] = inventory.Quote(a)
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`cd / || exit 1
rc=0
timeout -k 5 %d %s < /dev/null 1>&2 || rc=$?
case $rc in
0) echo changed ;;
124) echo "timed out after %ds" >&2 ;;
127) echo "command not found" >&2 ;;
esac
exit $rc
`, secs, strings.Join(argv, " "), secs)
	batch := j.batch
	if batch != nil {
		if err := e.runBatch(ctx, j); err != nil {
			return err
		}
		j.batch = nil
		defer func() { j.batch = batch }()
	}
	if _, err := e.step(ctx, j, "hook "+name, script, nil); err != nil {
		return fmt.Errorf("hook %s failed: %w", name, err)
	}
	return nil
}

// hookFor is the hook the manifest gives the component on this node, or,
// for a remove, the one its receipt recorded at install.
func (j *job) hookFor(name string) *manifests.Hook {
	if j.want != nil {
		return j.want.Hooks[name]
	}
	if r := j.haveReceipt(); r != nil {
		return r.Hooks[name]
	}
	return nil
}

// stopUnit stops and disables the unit if it runs or is enabled, after
// the preStop hook when it runs.
func (e *Executor) stopUnit(ctx context.Context, j *job) error {
	if err := e.preStop(ctx, j); err != nil {
		return err
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`u=%s
s=$(systemctl show -p ActiveState --value "$u" 2>/dev/null || true)
case "$s" in
"" | inactive | failed) ;;
*) systemctl stop "$u" >&2; echo changed ;;
esac
if [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" = enabled ]; then
	systemctl disable --quiet "$u" >&2
	echo changed
fi
if [ "$s" = failed ]; then systemctl reset-failed "$u" >&2 || true; fi
`, plan.UnitName(j.name))
	_, err := e.step(ctx, j, "stop unit", script, nil)
	return err
}

// deleteUnit removes the unit file and reloads systemd, or just reloads
// when a cut left systemd with a unit whose file is gone.
func (e *Executor) deleteUnit(ctx context.Context, j *job) error {
	unit := plan.UnitName(j.name)
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`u=%s
uf=%s
rm -f -- %s
if [ -e "$uf" ] || [ -L "$uf" ]; then
	rm -f -- "$uf"
	systemctl daemon-reload
	echo changed
elif [ "$(systemctl show -p NeedDaemonReload --value "$u" 2>/dev/null || true)" = yes ]; then
	systemctl daemon-reload
	echo changed
fi
`, unit, inventory.Quote(path.Join(e.unitDir(), unit)), inventory.Quote(path.Join(e.unitDir(), "."+unit+".tmp")))
	_, err := e.step(ctx, j, "delete unit", script, nil)
	return err
}

// deletePackage removes the active link, every version dir and the
// rendered files the receipt lists outside them.
func (e *Executor) deletePackage(ctx context.Context, j *job) error {
	var files []string
	if r := j.haveReceipt(); r != nil {
		for _, p := range r.Files {
			if e.outsidePackages(p) {
				files = append(files, p)
			}
		}
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`for p in %s %s %s; do
	if [ -e "$p" ] || [ -L "$p" ]; then rm -rf -- "$p"; echo changed; fi
done
`, inventory.Quote(manifests.ActiveDir(e.InstallRoot, j.name)), inventory.Quote(path.Join(e.InstallRoot, "active", "."+j.name+".tmp")),
		inventory.Quote(path.Join(e.InstallRoot, "packages", j.name))) + deleteFilesSnippet(files)
	_, err := e.step(ctx, j, "delete package", script, nil)
	return err
}

// pruneCacheOf deletes the cached artifacts only the component's receipt
// referred to.
func (e *Executor) pruneCacheOf(ctx context.Context, j *job) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + pruneCacheSnippet(nil, j.name)
	_, err := e.step(ctx, j, "prune cache", script, nil)
	return err
}

// deleteReceipt removes the receipt: the last step of a remove, so a
// remove cut off before it is seen, and run, again.
func (e *Executor) deleteReceipt(ctx context.Context, j *job) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`for p in "$root/receipts/"%s.json "$root/receipts/."%s.json.tmp; do
	if [ -e "$p" ]; then rm -f -- "$p"; echo changed; fi
done
`, j.name, j.name)
	_, err := e.step(ctx, j, "delete receipt", script, nil)
	return err
}
