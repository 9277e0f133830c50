package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

const compileManifest = `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  ssh: {user: core, port: 2222}
  nodes:
    - {name: m1, address: 127.0.2.1, roles: [master]}
    - {name: a1, address: 127.0.2.11, port: 22, user: admin, roles: [agent], paused: true}
  components:
    - name: app
      version: "2.0"
      roles: [agent]
      dependsOn: [db]
      artifact: {path: artifacts/app.tar.gz, sha256: "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}
      files:
        - {path: conf/app.conf, template: "node={{ .Node.Name }}\n"}
        - {path: /etc/app/global.conf, mode: "0600", template: "x"}
      service: {exec: "{{ .Dir }}/bin/app"}
      rollout: {maxUnavailable: "25%"}
    - name: old
      version: "0.1"
      state: absent
    - name: db
      version: "1"
      roles: [master]
      quorum: true
      service: {exec: "/usr/bin/db"}
      leader: {exec: {command: [/usr/bin/db-leads]}}
  rollout:
    roleOrder: [master, agent]
    maxUnavailable: "10%"
    healthTimeout: 90s
    onFailure: halt
`

// compileYAML parses and defaults without Validate, so Compile's own
// checks are what is tested, whatever Validate learns to catch first.
func compileYAML(t *testing.T, path, text string) (*Desired, error) {
	t.Helper()
	c, err := manifests.Parse([]byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c.SetDefaults()
	return Compile(&manifests.Loaded{Cluster: c, Path: path, Dir: filepath.Dir(path), Hash: "gen-1"})
}

func TestCompile(t *testing.T) {
	d, err := compileYAML(t, "/srv/cluster/drover.yaml", compileManifest)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"old", "db", "app"}; !slices.Equal(d.Order, want) {
		t.Errorf("Order = %v, want %v", d.Order, want)
	}
	if d.Cluster != "t" || d.InstallRoot != "/opt/drover" || d.Generation != "gen-1" || d.ProbeInterval != 30*time.Second {
		t.Errorf("cluster facts: %q %q %q %v", d.Cluster, d.InstallRoot, d.Generation, d.ProbeInterval)
	}
	if r := d.Rollout; r.MaxUnavailable.String() != "10%" || r.HealthTimeout != 90*time.Second ||
		r.OnFailure != "halt" || !slices.Equal(r.RoleOrder, []string{"master", "agent"}) {
		t.Errorf("rollout = %+v", r)
	}
	if old := d.Components["old"]; old.Present || len(old.Members) != 0 {
		t.Errorf("absent component: %+v", old)
	}
	db := d.Components["db"]
	if !db.Present || !db.Quorum || !slices.Equal(db.Members, []string{"m1"}) {
		t.Errorf("db info: %+v", db)
	}
	app := d.Components["app"]
	if app.MaxUnavailable == nil || app.MaxUnavailable.String() != "25%" || !slices.Equal(app.DependsOn, []string{"db"}) {
		t.Errorf("app info: %+v", app)
	}

	m1, a1 := d.Node("m1"), d.Node("a1")
	// The cluster's ssh user and port are the pool's to apply (after
	// the node's own, before ssh_config): the target keeps the node's.
	if !reflect.DeepEqual(m1.Target, inventory.Target{Name: "m1", Address: "127.0.2.1"}) {
		t.Errorf("m1 target = %+v", m1.Target)
	}
	if !reflect.DeepEqual(a1.Target, inventory.Target{Name: "a1", Address: "127.0.2.11", Port: 22, User: "admin"}) || !a1.Paused || m1.Paused {
		t.Errorf("a1 = %+v", a1)
	}
	if componentNames(m1.Components) != "db" || componentNames(a1.Components) != "app" {
		t.Errorf("placement: m1 %s, a1 %s", componentNames(m1.Components), componentNames(a1.Components))
	}
	// The leader check reaches the probe request.
	if req := RequestFor(d, m1); len(req.Components) != 1 || req.Components[0].Leader == nil ||
		!slices.Equal(req.Components[0].Leader.Exec.Command, []string{"/usr/bin/db-leads"}) {
		t.Errorf("m1 probe request: %+v", req)
	}

	dc := a1.Component("app")
	if dc.ArtifactPath != "/srv/cluster/artifacts/app.tar.gz" {
		t.Errorf("artifact path = %q", dc.ArtifactPath)
	}
	if dc.ArtifactSHA256 != strings.ToLower("ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789") {
		t.Errorf("artifact sha256 not normalised: %q", dc.ArtifactSHA256)
	}
	if len(dc.Files) != 2 || dc.Files[0].Path != "/opt/drover/packages/app/2.0/conf/app.conf" ||
		string(dc.Files[0].Content) != "node=a1\n" || dc.Files[1].Mode != 0o600 {
		t.Errorf("files = %+v", dc.Files)
	}
	if dc.ConfigHash != manifests.ConfigHash(manifests.Digests(dc.Files)) {
		t.Error("ConfigHash is not the hash of the rendered files")
	}
	sum := sha256.Sum256(dc.Unit)
	if dc.UnitHash != hex.EncodeToString(sum[:]) || !strings.Contains(string(dc.Unit), "ExecStart=/opt/drover/active/app/bin/app\n") {
		t.Errorf("unit %s hash %s", dc.Unit, dc.UnitHash)
	}
	// db runs on m1 only, so a1's unit must not name it.
	if strings.Contains(string(dc.Unit), "drover-db") {
		t.Errorf("a1's unit orders after a unit it does not have:\n%s", dc.Unit)
	}
}

func componentNames(cs []*DesiredComponent) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return strings.Join(out, ",")
}

func TestCompileRelativeManifestDirIsMadeAbsolute(t *testing.T) {
	// Loaded as a user's relative -f site/drover.yaml is (db made valid).
	text := strings.Replace(compileManifest, "      quorum: true\n", "      quorum: true\n      files: [{path: db.conf, template: x}]\n", 1)
	l, err := manifests.LoadBytes("site/drover.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs("site/artifacts/app.tar.gz")
	if got := d.Node("a1").Component("app").ArtifactPath; got != want {
		t.Errorf("artifact path = %q, want %q", got, want)
	}
}

func TestDependencyOrderIsStable(t *testing.T) {
	comps := []manifests.Component{
		{Name: "c", DependsOn: []string{"a"}},
		{Name: "b"},
		{Name: "a"},
		{Name: "d", DependsOn: []string{"c", "b"}},
		{Name: "e"},
	}
	got, err := dependencyOrder(comps)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "a", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestCompileErrors(t *testing.T) {
	base := `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
    - {name: m1, address: 127.0.2.1, roles: [master]}
  components:
`
	cases := []struct {
		name, comps, want string
	}{
		{"cycle", `
    - {name: a, version: "1", dependsOn: [b]}
    - {name: b, version: "1", dependsOn: [c]}
    - {name: c, version: "1", dependsOn: [a]}
`, "dependsOn cycle: a -> b -> c -> a"},
		{"self", `
    - {name: a, version: "1", dependsOn: [a]}
`, "component a depends on itself"},
		{"unknown dependency", `
    - {name: a, version: "1", dependsOn: [zz]}
`, "component a depends on unknown component zz"},
		{"depends on absent", `
    - {name: a, version: "1", dependsOn: [b]}
    - {name: b, version: "1", state: absent}
`, "component a depends on b, which is absent"},
		{"duplicate component", `
    - {name: a, version: "1"}
    - {name: a, version: "2"}
`, "component a is listed twice"},
		{"render error names node and component", `
    - name: a
      version: "1"
      files: [{path: x.conf, template: "{{ .Nope }}"}]
`, "render a/x.conf for node m1"},
		{"unit error names node and component", `
    - name: a
      version: "1"
      service: {exec: "/bin/a 'unbalanced"}
`, "node m1, component a: service exec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileYAML(t, "/srv/c.yaml", base+tc.comps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCompileUnitsPerNode: nodes whose units read the same share one
// written unit; a unit whose command line names the node is each node's own.
func TestCompileUnitsPerNode(t *testing.T) {
	l, err := manifests.LoadBytes("m.yaml", []byte(`apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
    - {name: n1, address: 10.0.0.1}
    - {name: n2, address: 10.0.0.2}
  components:
    - name: same
      version: "1"
      artifact: {url: "https://example.com/a.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      service: {exec: "{{ .Dir }}/bin/run"}
    - name: own
      version: "1"
      artifact: {url: "https://example.com/b.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      service: {exec: "{{ .Dir }}/bin/run --name={{ .Node.Name }}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := d.Node("n1"), d.Node("n2")
	if a, b := n1.Component("same"), n2.Component("same"); a.UnitHash != b.UnitHash || string(a.Unit) != string(b.Unit) {
		t.Errorf("the same unit differs between nodes:\n%s\n%s", a.Unit, b.Unit)
	}
	for _, n := range []*DesiredNode{n1, n2} {
		c := n.Component("own")
		if want := "--name=" + n.Name + "\n"; !strings.Contains(string(c.Unit), want) || c.UnitHash != manifests.SHA256Hex(c.Unit) {
			t.Errorf("%s's unit (hash %s) lacks %q:\n%s", n.Name, c.UnitHash, want, c.Unit)
		}
	}
}
