package execute

import (
	"bytes"
	"context"
	"fmt"
	"path"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// keptUnitName is a copy of the unit text a version ran with, kept in its
// version dir. A rollback is a symlink switch and a restart, but when the
// failed change also changed the unit (a new ExecStart, new flags), the
// old version cannot start under the new unit: the rollback puts the kept
// one back. The copy goes with its version dir when that is pruned.
const keptUnitName = manifests.KeptUnitName

// keepUnit stores the unit the manifest wants in the version dir of the
// version it is written for (a no-op when it is already there).
func (e *Executor) keepUnit(ctx context.Context, j *job) error {
	if j.want == nil || j.want.Unit == nil {
		return nil
	}
	dir := manifests.VersionDir(e.InstallRoot, j.name, j.want.Version)
	p := path.Join(dir, keptUnitName)
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf("put %s %s %s %s 644 %d %s\n",
		inventory.Quote(dir), inventory.Quote(dir), inventory.Quote(p), inventory.Quote(p+".tmp"), len(j.want.Unit), manifests.SHA256Hex(j.want.Unit))
	_, err := e.step(ctx, j, "keep unit", script, bytes.NewReader(j.want.Unit))
	return err
}

// restoreUnit makes the unit file the one kept for version, if one was
// kept and it differs, and reloads systemd.
func (e *Executor) restoreUnit(ctx context.Context, j *job, version string) error {
	unit := plan.UnitName(j.name)
	kept := path.Join(manifests.VersionDir(e.InstallRoot, j.name, version), keptUnitName)
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`kept=%s
uf=%s
t=%s
[ -f "$kept" ] && [ ! -L "$kept" ] || exit 0
is_sha "$kept" - || true
if is_sha "$uf" "$got"; then exit 0; fi
rm -f -- "$t"
cp -- "$kept" "$t"
chmod 0644 -- "$t"
sync -- "$t"
mv -fT -- "$t" "$uf"
systemctl daemon-reload
echo changed
`, inventory.Quote(kept), inventory.Quote(path.Join(e.unitDir(), unit)), inventory.Quote(path.Join(e.unitDir(), "."+unit+".tmp")))
	_, err := e.step(ctx, j, "restore unit", script, nil)
	return err
}
