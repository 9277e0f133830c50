package manifests

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var updateAnsible = flag.Bool("update-ansible", false, "rewrite testdata/ansible/*.golden from the importer's output")

// TestImportAnsibleGolden: real-world-shaped inventories (INI with
// groups, children, ranges and vars; YAML with nested children) import
// to the nodes and warnings in the golden files, and the nodes validate.
func TestImportAnsibleGolden(t *testing.T) {
	for _, name := range []string{"production.ini", "staging.yml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/ansible", name))
			if err != nil {
				t.Fatal(err)
			}
			imp, err := ImportAnsible(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := FormatNodes(imp.Nodes)
			if err != nil {
				t.Fatal(err)
			}
			got := string(out) + "# warnings:\n"
			for _, w := range imp.Warnings {
				got += "# " + w + "\n"
			}
			golden := filepath.Join("testdata/ansible", name+".golden")
			if *updateAnsible {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("import of %s:\n%s\nwant:\n%s", name, got, want)
			}

			// What was printed is an inventoryFile drover accepts.
			in, _, err := ParseInventory(out)
			if err != nil {
				t.Fatalf("printed nodes do not parse: %v", err)
			}
			c := &Cluster{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "imported"},
				Spec: Spec{Nodes: in.Nodes, Components: []Component{}}}
			c.SetDefaults()
			for _, p := range c.Validate() {
				if p.Severity == SeverityError && !strings.HasSuffix(p.Path, ".name") {
					t.Errorf("imported node problem: %s", p)
				}
			}
		})
	}
}

func TestImportAnsibleDetails(t *testing.T) {
	imp, err := ImportAnsible([]byte(`
[a]
h1 ansible_ssh_extra_args="-J j1,root@j2:2201"
h2 ansible_host=10.0.0.2 ansible_ssh_host=ignored ansible_port=notaport
[b:children]
a
[b:vars]
role_var=from-b
[a:vars]
role_var=from-a
`))
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := imp.Nodes[0], imp.Nodes[1]
	if len(h1.Jump) != 2 || h1.Jump[0].Address != "j1" || !reflect.DeepEqual(h1.Jump[1], Bastion{Address: "j2", Port: 2201, User: "root"}) {
		t.Errorf("-J chain: %+v", h1.Jump)
	}
	if !slices.Equal(h1.Roles, []string{"a", "b"}) {
		t.Errorf("roles through children: %v", h1.Roles)
	}
	if h1.Labels["role_var"] != "from-a" {
		t.Errorf("a child group's vars win over its parent's: %v", h1.Labels)
	}
	if h2.Address != "10.0.0.2" || h2.Port != 0 {
		t.Errorf("h2: %+v", h2)
	}
	if !slices.ContainsFunc(imp.Warnings, func(w string) bool { return strings.Contains(w, `ansible_port="notaport"`) }) {
		t.Errorf("warnings %q lack the bad port", imp.Warnings)
	}
	for _, bad := range []string{"[a\nh1", "[a:hosts]\nh1", "[a]\nh1 novalue", "[a]\nweb[3:1]", "[a]\nh1 x='open"} {
		if _, err := ImportAnsible([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%q: want an error naming the line, got %v", bad, err)
		}
	}
}

// TestAnsibleYAMLAsInventoryFile: an Ansible YAML inventory named by
// spec.inventoryFile is read directly; what it cannot map is a warning.
func TestAnsibleYAMLAsInventoryFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hosts.yml"), []byte(`all:
  children:
    master:
      hosts:
        m1: {ansible_host: 127.0.2.1, ansible_become: true, zone: a}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(`apiVersion: drover/v1
kind: Cluster
metadata: {name: ansible}
spec:
  inventoryFile: hosts.yml
  components: []
`), 0o644)
	l, err := Load(filepath.Join(dir, "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := l.Cluster.Spec.Nodes
	if len(n) != 1 || n[0].Name != "m1" || n[0].Address != "127.0.2.1" || !slices.Equal(n[0].Roles, []string{"master"}) || n[0].Labels["zone"] != "a" {
		t.Fatalf("nodes %+v", n)
	}
	var warnings []string
	for _, p := range l.Warnings {
		warnings = append(warnings, p.String())
	}
	if !slices.Contains(warnings, "warning: hosts.yml:ansible: host m1: ansible_become not mapped: drover runs privileged steps through sudo -n for any login user but root (passwordless sudo needed)") {
		t.Errorf("warnings: %q", warnings)
	}
}
