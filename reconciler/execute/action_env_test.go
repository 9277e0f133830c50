package execute

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// TestActionEnvMigrationRestartsNothing: on the node, that reconfigure
// writes the environment file (0600) and the new unit, reloads systemd
// and writes the receipt, but does not restart the service.
func TestActionEnvMigrationRestartsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := f.component(t, "1.0.0", false)
	legacy := *base
	legacy.Unit = append(slices.Clone(base.Unit), "Environment=\"TOKEN=s3cr3t\"\n"...)
	f.withFiles(&legacy, base.Files)
	f.mustDo(t, plan.ActionInstall, &legacy)

	migrated := *base
	migrated.Unit = append(slices.Clone(base.Unit), "EnvironmentFile=/x/.drover-env\n"...)
	env := manifests.RenderedFile{Path: manifests.VersionDir(f.n.Root, "app", "1.0.0") + "/" + manifests.EnvFileName, Mode: 0o600, Content: []byte("TOKEN=\"s3cr3t\"\n")}
	f.withFiles(&migrated, append(slices.Clone(base.Files), env))
	migrated.EnvMigration = &plan.EnvMigration{UnitHash: legacy.UnitHash, ConfigHash: legacy.ConfigHash}

	have := f.n.Observe(t, "app")
	have.FilesHash = legacy.ConfigHash // what the probe hashes of the wanted files present on disk
	f.n.ResetCalls(t)
	a := plan.Action{Node: "local", Component: "app", Kind: plan.ActionReconfigure, From: "1.0.0", To: "1.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), a, &migrated, have); err != nil {
		t.Fatalf("reconfigure: %v", err)
	}
	calls := f.n.SystemctlCalls(t)
	if slices.Contains(calls, "restart drover-app.service") || !slices.Contains(calls, "daemon-reload") {
		t.Errorf("systemctl calls %q: want a daemon-reload and no restart", calls)
	}
	if fi, err := os.Stat(env.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("environment file: %v, mode %v", err, fi)
	}
	if got := readFile(t, filepath.Join(f.n.UnitDir, "drover-app.service")); got != string(migrated.Unit) {
		t.Errorf("unit after the migration:\n%s", got)
	}
	if r := f.receipt(t); r.UnitHash != migrated.UnitHash || r.ConfigHash != migrated.ConfigHash {
		t.Errorf("receipt hashes %s %s, want %s %s", r.UnitHash, r.ConfigHash, migrated.UnitHash, migrated.ConfigHash)
	}
	if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
		t.Errorf("unit %s after the migration", s)
	}
}
