package reconciler

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
const keptFilesDir = ".drover-files"

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
func (e *Executor) restoreFiles(ctx context.Context, j *job, version string) error {
	kd := path.Join(manifests.VersionDir(e.InstallRoot, j.name, version), keptFilesDir)
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`kd=%s
[ -d "$kd" ] || exit 0
find "$kd" -type f ! -name '.drover-*.tmp' | while IFS= read -r f; do
	p=${f#"$kd"}
	is_sha "$f" - || :
	if is_sha "$p" "$got" && [ "$(stat -c %%a -- "$p")" = "$(stat -c %%a -- "$f")" ]; then continue; fi
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
`, inventory.Quote(kd))
	_, err := e.step(ctx, j, "restore files", script, nil)
	return err
}
