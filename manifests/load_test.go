package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSetDefaults(t *testing.T) {
	c, err := Parse([]byte(`
spec:
  ssh: {user: core, port: 2222, bastion: {address: jump}}
  nodes: [{name: a, address: 127.0.0.1}, {name: b, address: 127.0.0.2, port: 22, user: admin}]
  components:
    - name: c
      artifact: {path: c.tar.gz, sha256: ABCDEF}
      files: [{path: f}, {path: g, mode: "0600"}]
      service: {exec: x}
      health: {http: {port: 80}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	s := c.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"installRoot", s.InstallRoot, DefaultInstallRoot},
		{"probeInterval", s.ProbeInterval, Duration("30s")},
		// SSH settings stay unset for inventory to resolve per node,
		// ssh_config before defaults (inventory.TestResolvePrecedence).
		{"ssh.knownHostsFile left unset", s.SSH.KnownHostsFile, ""},
		{"ssh.connectTimeout left unset", s.SSH.ConnectTimeout, Duration("")},
		{"ssh.concurrency", s.SSH.Concurrency, DefaultConcurrency},
		{"bastion.port left unset", s.SSH.Bastion.Port, 0},
		{"bastion.user left unset", s.SSH.Bastion.User, ""},
		{"node port left unset", s.Nodes[0].Port, 0},
		{"node user left unset", s.Nodes[0].User, ""},
		{"node port kept", s.Nodes[1].Port, 22},
		{"node user kept", s.Nodes[1].User, "admin"},
		{"state", s.Components[0].State, StatePresent},
		{"sha256 lowercased", s.Components[0].Artifact.SHA256, "abcdef"},
		{"file mode", s.Components[0].Files[0].Mode, "0644"},
		{"file mode kept", s.Components[0].Files[1].Mode, "0600"},
		{"restart", s.Components[0].Service.Restart, "on-failure"},
		{"health timeout", s.Components[0].Health.Timeout, Duration("5s")},
		{"http path", s.Components[0].Health.HTTP.Path, "/"},
		{"http status", s.Components[0].Health.HTTP.ExpectStatus, 200},
		{"rollout.maxUnavailable", s.Rollout.MaxUnavailable.String(), "1"},
		{"rollout.healthTimeout", s.Rollout.HealthTimeout, Duration("5m")},
		{"rollout.onFailure", s.Rollout.OnFailure, OnFailureRollback},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// idempotent
	before, _ := json.Marshal(c)
	c.SetDefaults()
	if after, _ := json.Marshal(c); string(before) != string(after) {
		t.Errorf("SetDefaults twice changed the cluster:\n%s\n%s", before, after)
	}
}

func TestIntOrPercent(t *testing.T) {
	cases := []struct {
		yaml    string
		valid   bool
		str     string
		of10    int
		percent bool
	}{
		{"2", true, "2", 2, false},
		{`"3"`, true, "3", 3, false},
		{`"25%"`, true, "25%", 2, true},
		{`" 50% "`, true, "50%", 5, true},
		{`"5%"`, true, "5%", 1, true}, // rounds down, but at least 1
		{`"100%"`, true, "100%", 10, true},
		{`"150%"`, false, "150%", 15, true},
		{"-1", false, "-1", 1, false},
		{"2.5", false, "2.5", 0, false},
		{`"ten"`, false, "ten", 0, false},
		{`"%"`, false, "%", 0, false},
		{`""`, false, "", 0, false},
		{"true", false, "true", 0, false},
		{"[1]", false, "[1]", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.yaml, func(t *testing.T) {
			c, err := Parse([]byte("spec: {rollout: {maxUnavailable: " + tc.yaml + "}}"))
			if err != nil {
				t.Fatal(err)
			}
			v := c.Spec.Rollout.MaxUnavailable
			if v.Valid() != tc.valid || v.String() != tc.str || v.Percent != tc.percent {
				t.Fatalf("got valid=%v %q percent=%v", v.Valid(), v.String(), v.Percent)
			}
			if tc.valid || tc.of10 > 0 {
				if got := v.Of(10); got != tc.of10 {
					t.Fatalf("Of(10) = %d, want %d", got, tc.of10)
				}
			}
		})
	}
	if NewPercent(10).String() != "10%" || NewCount(3).String() != "3" {
		t.Fatal("constructors")
	}
	if got := NewPercent(10).Of(0); got != 1 {
		t.Fatalf("Of(0) = %d, want 1", got)
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		d    Duration
		want time.Duration
	}{
		{"", 7 * time.Second},
		{"30s", 30 * time.Second},
		{"1m30s", 90 * time.Second},
		{"3x", 7 * time.Second},
		{"30", 7 * time.Second},
	}
	for _, tc := range cases {
		if got := tc.d.Get(7 * time.Second); got != tc.want {
			t.Errorf("Duration(%q).Get = %v, want %v", tc.d, got, tc.want)
		}
	}
	// a bare number parses (so Validate can say it lacks a unit)
	c, err := Parse([]byte(`{"spec": {"probeInterval": 30}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.ProbeInterval != "30" {
		t.Fatalf("probeInterval = %q", c.Spec.ProbeInterval)
	}
}

func TestLoadWithInventoryFile(t *testing.T) {
	l, err := Load("testdata/inventory/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nodes := l.Cluster.Spec.Nodes
	if len(nodes) != 3 || nodes[2].Name != "m3" {
		t.Fatalf("nodes: %+v", nodes)
	}
	if nodes[0].Port != 0 || nodes[0].User != "" || nodes[2].Port != 22 || nodes[2].User != "admin" {
		t.Fatalf("node fields as written: %+v", nodes)
	}
	// Dir is absolute: what the manifest names does not depend on the
	// working directory of whoever uses the load later.
	if wantDir, _ := filepath.Abs("testdata/inventory"); l.Dir != wantDir || l.Path != "testdata/inventory/cluster.yaml" {
		t.Fatalf("dir %q path %q", l.Dir, l.Path)
	}
}

// writeCluster writes a manifest (and hosts.yaml if given) to a temp dir.
func writeCluster(t *testing.T, manifest, hosts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if hosts != "" {
		if err := os.WriteFile(filepath.Join(dir, "hosts.yaml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "cluster.yaml")
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadInventoryProblems(t *testing.T) {
	manifest := readTestdata(t, "inventory/cluster.yaml")
	cases := []struct {
		name, manifest, hosts, want string
	}{
		{"node problems name the inventory file", manifest,
			"nodes:\n  - {name: m1, address: 127.0.2.1, roles: [master]}\n  - {name: m1, address: 127.0.2.1, roles: [master], labels: {on: yes}}\n",
			"cluster.yaml: 4 problem(s):\n" +
				"  hosts.yaml:nodes[1].labels.true: the key is a YAML boolean, not text; quote it\n" +
				"  hosts.yaml:nodes[1].labels.true: true is a YAML boolean (as are yes, no, on and off), not text; quote it\n" +
				"  hosts.yaml:nodes[1].name: duplicate name \"m1\" (also hosts.yaml:nodes[0])\n" +
				"  hosts.yaml:nodes[1].address: duplicate address 127.0.2.1:2222 (also hosts.yaml:nodes[0])\n" +
				"  warning: spec.components[0].quorum: 2 members tolerate no more failures than 1"},
		{"empty inventory", manifest, "nodes: []\n",
			"cluster.yaml: 1 problem(s):\n  spec.inventoryFile: hosts.yaml lists no nodes"},
		{"unknown field in inventory", manifest, "nodes: [{name: m1, adress: 127.0.2.1}]\n",
			"hosts.yaml: 1 problem(s):\n  nodes[0].adress: unknown field (did you mean address?)"},
		{"missing inventory", manifest, "", "spec.inventoryFile: open "},
		{"ansible INI inventory", manifest, "# from ansible\n[masters]\nm1 ansible_host=10.0.0.1\n\n[agents]\na1\n",
			"hosts.yaml: this looks like an Ansible INI inventory, not drover's YAML: see `drover import ansible`"},
		{"ansible INI inventory without groups", manifest, "m1 ansible_host=10.0.0.1 ansible_user=root\n",
			"hosts.yaml: this looks like an Ansible INI inventory"},
		{"nodes and inventory both", strings.Replace(manifest, "inventoryFile: hosts.yaml",
			"inventoryFile: hosts.yaml\n  nodes: [{name: m1, address: 127.0.2.1, roles: [master]}]", 1),
			"nodes: [{name: m9, address: 127.0.2.9}]\n",
			"cluster.yaml: 1 problem(s):\n  spec.inventoryFile: set either spec.nodes or spec.inventoryFile, not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeCluster(t, tc.manifest, tc.hosts)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(path)+"/", "")
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error:\n%s\nwant it to contain:\n%s", msg, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxManifestBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		big:                           "more than the 4194304 allowed",
		empty:                         "manifest is empty",
		filepath.Join(dir, "missing"): "no such file",
		filepath.Join(dir, "."):       "is a directory",
	}
	for path, want := range cases {
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want %q", path, err, want)
		}
		var invalid *InvalidError
		if errors.As(err, &invalid) {
			t.Errorf("Load(%s): %v is not a validation error", path, err)
		}
	}
}

// TestLoadFromPipe reads a manifest whose size stat cannot tell.
func TestLoadFromPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.WriteString(baseManifest)
		w.Close()
	}()
	defer r.Close()
	l, err := Load("/dev/fd/" + strconv.Itoa(int(r.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Cluster.Spec.Nodes) != 4 {
		t.Fatalf("%d nodes", len(l.Cluster.Spec.Nodes))
	}
}

func TestHash(t *testing.T) {
	manifest := readTestdata(t, "inventory/cluster.yaml")
	hosts := readTestdata(t, "inventory/hosts.yaml")
	hash := func(m, h string) string {
		t.Helper()
		l, err := Load(writeCluster(t, m, h))
		if err != nil {
			t.Fatal(err)
		}
		return l.Hash
	}
	first := hash(manifest, hosts)
	if len(first) != 64 {
		t.Fatalf("hash %q", first)
	}
	if again := hash(manifest, hosts); again != first {
		t.Fatal("same files, different hash")
	}
	if hash(manifest+"# a comment\n", hosts) == first {
		t.Fatal("manifest changed, hash did not")
	}
	if hash(manifest, hosts+"# a comment\n") == first {
		t.Fatal("inventory changed, hash did not")
	}
	// the manifest's bytes alone, without an inventory
	l, err := LoadBytes("x.yaml", []byte(baseManifest))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(baseManifest)); l.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s is not the sha256 of the manifest", l.Hash)
	}
}
