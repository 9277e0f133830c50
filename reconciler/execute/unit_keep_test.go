package execute

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// A failed upgrade that also changed the unit: the rollback puts back the
// unit the old version ran with, so the old version starts again.
func TestActionRollbackRestoresUnit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	haveBefore := f.n.Observe(t, "app")

	bad := f.component(t, "2.0.0", true)
	bad.Unit = []byte("[Unit]\nDescription=app\n[Service]\nExecStart=" + manifests.ActiveDir(f.n.Root, "app") + "/bin/app --new-flag\n[Install]\nWantedBy=multi-user.target\n")
	bad = f.withFiles(bad, bad.Files)
	up := plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), up, bad, haveBefore); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("upgrade to a broken version: %v, want ErrUnhealthy", err)
	}
	unitFile := filepath.Join(f.n.UnitDir, "drover-app.service")
	if b, _ := os.ReadFile(unitFile); !bytes.Equal(b, bad.Unit) {
		t.Fatalf("the upgrade did not write its unit: %q", b)
	}

	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, From: "2.0.0", To: "1.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, bad, haveBefore); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if b, _ := os.ReadFile(unitFile); !bytes.Equal(b, v1.Unit) {
		t.Errorf("unit after rollback:\n%s\nwant 1.0.0's:\n%s", b, v1.Unit)
	}
	if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
		t.Errorf("unit %s after rollback", s)
	}
	if r := f.receipt(t); r.Version != "1.0.0" || r.UnitHash != v1.UnitHash {
		t.Errorf("receipt after rollback %+v, want 1.0.0 with its unit hash", r)
	}
}
