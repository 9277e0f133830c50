package execute

import (
	"context"
	"fmt"
	"path"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// keptFilesDir holds, in a version dir, a copy of every rendered file the
// version was last deployed with outside that dir (/etc/default/app, say),
// at the same path below it. Files in the version dir go with their
// version, but an upgrade rewrites those outside in place: a rollback that
// only switched the link would restart the old version on the new
// version's config. The rollback puts the kept copies back instead. The
// copies go with their version dir when that is pruned.
const keptFilesDir = manifests.KeptFilesDir

// keptPath is where the version dir vdir keeps its copy of file p.
func keptPath(vdir, p string) string { return path.Join(vdir, keptFilesDir) + p }

// keptFiles are the kept copies of the wanted files outside the version
// dir, and the kept copies of stale files (ones an earlier receipt lists
// that the manifest no longer has) to delete with them.
func (e *Executor) keptFiles(j *job, stale []string) (keep []manifests.RenderedFile, drop []string) {
	vdir := manifests.VersionDir(e.InstallRoot, j.name, j.want.Version)
	for _, f := range j.want.Files {
		if _, in := under(vdir, f.Path); !in {
			keep = append(keep, manifests.RenderedFile{Path: keptPath(vdir, f.Path), Mode: f.Mode, Content: f.Content})
		}
	}
	for _, p := range stale {
		drop = append(drop, keptPath(vdir, p))
	}
	return keep, drop
}

// restoreFiles puts back the files version kept outside its dir, those
// that differ in content or mode; files it did not have stay as they are.
//
// Only files drover recorded are put back: the paths the node's receipt
// lists (the receipt of the version rolled back to, when the failed
// change never wrote its own), outside the install root. A copy must be
// a regular file reached without leaving the kept dir through a link. So
// whatever else lies under .drover-files (planted there, or written by
// a manifest before the name was reserved) is never copied out, and a
// rollback writes nowhere drover has not written before.
func (e *Executor) restoreFiles(ctx context.Context, j *job, version string) error {
	vdir := manifests.VersionDir(e.InstallRoot, j.name, version)
	kd := path.Join(vdir, keptFilesDir)
	var paths []string
	if r := j.haveReceipt(); r != nil {
		for _, p := range r.Files {
			if _, inRoot := under(e.InstallRoot, p); !inRoot && e.outsidePackages(p) {
				paths = append(paths, p)
			}
		}
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`kd=%s
[ -d "$kd" ] && [ ! -L "$kd" ] || exit 0
set -- %s
for p; do
	f=$kd$p
	[ -f "$f" ] && [ ! -L "$f" ] || continue
	is_sha "$f" - || :
	if is_sha "$p" "$got" && [ "$(stat -c %%a -- "$p")" = "$(stat -c %%a -- "$f")" ]; then continue; fi
	within "$kd" "$f" || exit 77
	d=${p%%/*}
	[ -n "$d" ] || d=/
	mkdirp "$d"
	t=$d/.drover-restore.tmp
	rmpath "$t"
	cp -p -- "$f" "$t"
	sync -- "$t"
	mv -fT -- "$t" "$p"
	echo changed
done
`, inventory.Quote(kd), shList(paths))
	_, err := e.step(ctx, j, "restore files", script, nil)
	return err
}
