package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// TestUnitSecretsGoToEnvironmentFile: service.environment is not in the
// world-readable unit (nor in what systemctl show tells any user): the
// unit names an EnvironmentFile through the active link, and Compile
// renders that file with mode 0600 into the version dir, quoted as
// systemd reads it (issue 24).
func TestUnitSecretsGoToEnvironmentFile(t *testing.T) {
	const secret = `pa$$ "w\o` + "`rd` 100%"
	svc := &manifests.Service{Exec: "{{ .Dir }}/bin/app", Environment: map[string]string{"TOKEN": secret, "A": "1"}}
	unit, err := renderFixtureUnit(t, svc, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(unit, "TOKEN") || strings.Contains(unit, "pa$$") || strings.Contains(unit, "Environment=") {
		t.Errorf("the unit carries the environment:\n%s", unit)
	}
	if !strings.Contains(unit, "\nEnvironmentFile=/opt/drover/active/app/.drover-env\n") {
		t.Errorf("the unit does not name the environment file:\n%s", unit)
	}
	env, err := RenderEnvironmentFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by drover; local changes are overwritten.\nA=\"1\"\nTOKEN=\"pa\\$\\$ \\\"w\\\\o\\`rd\\` 100%\"\n"
	if string(env) != want {
		t.Errorf("environment file:\n%s\nwant:\n%s", env, want)
	}

	d, err := compileYAML(t, "/srv/cluster/drover.yaml", `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes: [{name: m1, address: 127.0.2.1}]
  components:
    - name: app
      version: "2.0"
      files: [{path: conf/app.conf, template: "x"}]
      service:
        exec: "{{ .Dir }}/bin/app"
        environment: {TOKEN: s3cr3t}
    - name: plain
      version: "1"
      files: [{path: conf/app.conf, template: "x"}]
      service: {exec: "{{ .Dir }}/bin/plain"}
`)
	if err != nil {
		t.Fatal(err)
	}
	app := d.Nodes[0].Components[0]
	var found *manifests.RenderedFile
	for i, f := range app.Files {
		if f.Path == "/opt/drover/packages/app/2.0/.drover-env" {
			found = &app.Files[i]
		}
	}
	switch {
	case found == nil:
		t.Errorf("no environment file among %+v", app.Files)
	case found.Mode != 0o600 || string(found.Content) != "# Written by drover; local changes are overwritten.\nTOKEN=\"s3cr3t\"\n":
		t.Errorf("environment file mode %o content %q", found.Mode, found.Content)
	}
	if strings.Contains(string(app.Unit), "s3cr3t") {
		t.Errorf("compiled unit carries the secret:\n%s", app.Unit)
	}
	// A service without environment keeps the unit, and so the unit hash
	// in its receipt, of drover before the environment file: upgrading
	// drover restarts nothing there.
	plain := d.Nodes[0].Components[1]
	if len(plain.Files) != 1 {
		t.Errorf("a service without environment got files %+v", plain.Files)
	}
	const plainUnit = `# Written by drover; local changes are overwritten.
[Unit]
Description=drover: plain
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/opt/drover/active/plain/bin/plain
WorkingDirectory=/opt/drover/active/plain
Restart=on-failure
RestartSec=2s

[Install]
WantedBy=multi-user.target
`
	sum := sha256.Sum256([]byte(plainUnit))
	if string(plain.Unit) != plainUnit || plain.UnitHash != hex.EncodeToString(sum[:]) {
		t.Errorf("unit of a service without environment changed:\n%s", plain.Unit)
	}
}

// TestUnitInlineEnvironmentIsTheOldUnit: the unit Compile hashes for
// EnvMigration is byte for byte what drover wrote before the
// environment file (this text is the old TestUnitText golden), so a
// receipt from then is recognised.
func TestUnitInlineEnvironmentIsTheOldUnit(t *testing.T) {
	c, app := unitFixture(&manifests.Service{
		Exec:        `{{ .Dir }}/bin/app --listen={{ .Node.Address }}:80 --date-format=%Y "a b"`,
		User:        "app",
		Group:       "app",
		Environment: map[string]string{"ZED": `say "hi" 100%`, "ALPHA": `C:\dir`},
	})
	n, _ := c.NodeByName("m1")
	u, err := renderUnit(c.NewRenderer(t.Context()), nil, app, n, serviceDeps(c, n, app), true)
	if err != nil {
		t.Fatal(err)
	}
	b := u.text
	want := `# Written by drover; local changes are overwritten.
[Unit]
Description=drover: app
After=network-online.target
Wants=network-online.target
After=drover-db.service
Wants=drover-db.service

[Service]
Type=simple
ExecStart=/opt/drover/active/app/bin/app --listen=127.0.2.1:80 --date-format=%%Y "a b"
User=app
Group=app
Environment="ALPHA=C:\\dir"
Environment="ZED=say \"hi\" 100%%"
WorkingDirectory=/opt/drover/active/app
Restart=on-failure
RestartSec=2s

[Install]
WantedBy=multi-user.target
`
	if string(b) != want {
		t.Errorf("inline unit:\n%s\nwant:\n%s", b, want)
	}
}

// TestDiffEnvMigrationRestartsNothing: a node a drover from before the
// environment file converged (receipt and disk at the inline unit and
// the config without .drover-env) gets one reconfigure that is not
// disruptive; any other change with it is an ordinary, disruptive one.
func TestDiffEnvMigrationRestartsNothing(t *testing.T) {
	d, err := compileYAML(t, "/srv/cluster/drover.yaml", `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes: [{name: m1, address: 127.0.2.1}]
  components:
    - name: app
      version: "2.0"
      files: [{path: conf/app.conf, template: "x"}]
      service:
        exec: "{{ .Dir }}/bin/app"
        environment: {TOKEN: s3cr3t}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := d.Nodes[0].Components[0]
	m := want.EnvMigration
	if m == nil {
		t.Fatal("no EnvMigration for a service with environment")
	}
	legacy := func() map[string]probes.Observed {
		oc := observedSynced(want)
		oc.Receipt.UnitHash, oc.Receipt.ConfigHash, oc.Unit.Hash, oc.FilesHash = m.UnitHash, m.ConfigHash, m.UnitHash, m.ConfigHash
		return map[string]probes.Observed{"m1": {Node: "m1", Known: true, Components: map[string]*probes.Component{"app": oc}}}
	}
	acts := Diff(d, legacy()).Nodes[0].Actions
	if len(acts) != 1 || acts[0].Kind != ActionReconfigure || acts[0].Disruptive {
		t.Errorf("plan for a node at the inline environment: %+v, want one reconfigure that is not disruptive", acts)
	}
	changed := legacy()
	changed["m1"].Components["app"].Receipt.ConfigHash = "other"
	changed["m1"].Components["app"].FilesHash = "other"
	if acts := Diff(d, changed).Nodes[0].Actions; len(acts) != 1 || acts[0].Kind != ActionReconfigure || !acts[0].Disruptive {
		t.Errorf("plan for a node with another config too: %+v, want one disruptive reconfigure", acts)
	}
}
