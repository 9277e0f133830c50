package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runDrover runs the CLI in-process and returns exit code, stdout, stderr.
func runDrover(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExamples(t *testing.T) {
	examples, _ := filepath.Glob("../../examples/*/cluster.yaml")
	if len(examples) < 2 {
		t.Fatalf("examples: %v", examples)
	}
	counts := map[string]string{"dcos": "6 nodes, 3 components", "demo": "3 nodes, 2 components"}
	for _, path := range examples {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			code, out, errs := runDrover(t, "validate", "-f", path)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr:\n%s", code, errs)
			}
			first := strings.SplitN(out, "\n", 2)[0]
			want := regexp.MustCompile(`^` + regexp.QuoteMeta(path+": valid ("+counts[name]+", generation ") + `[0-9a-f]{12}\)$`)
			if !want.MatchString(first) {
				t.Fatalf("first line %q does not match %s", first, want)
			}
			// the artifacts are not checked in: warned about, not fatal
			if !strings.Contains(out, path+": warning: spec.components[0].artifact.path: artifacts/") {
				t.Errorf("no missing-artifact warning:\n%s", out)
			}
		})
	}
}

// brokenCopy writes a copy of the DC/OS example with the given replacements.
func brokenCopy(t *testing.T, replacements ...string) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/dcos/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("example has no %q", replacements[i])
		}
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateBrokenCopy(t *testing.T) {
	path := brokenCopy(t,
		"- {name: m2, address: 10.0.0.12,", "- {name: m1, address: 10.0.0.11,",
		`sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, `sha256: "0123"`,
		"probeInterval: 30s", "probeInterval: 3x",
		"roleOrder: [master, agent, public_agent]", "roleOrder: [master, agent, public-agent]",
		"- path: conf/myid", "- path: ../myid",
	)
	code, out, errs := runDrover(t, "validate", "-f", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	want := []string{
		path + `: spec.probeInterval: "3x" is not a duration`,
		path + `: spec.nodes[1].name: duplicate name "m1" (also spec.nodes[0])`,
		path + `: spec.nodes[1].address: duplicate address 10.0.0.11:22 (also spec.nodes[0])`,
		path + `: spec.components[0].artifact.sha256: must be 64 hex characters`,
		path + `: spec.components[0].files[1].path: "../myid" escapes the component directory`,
		path + `: spec.rollout.roleOrder[2]: no node has role "public-agent"`,
	}
	if got := strings.Split(strings.TrimSuffix(errs, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errs, strings.Join(want, "\n"))
	}
}

func TestValidateParseErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"misspelt field", []string{"probeInterval: 30s", "probeIntreval: 30s"},
			"spec.probeIntreval: unknown field (did you mean probeInterval?)"},
		{"unquoted mode", []string{`mode: "0644"`, "mode: 0644"},
			`spec.components[0].files[0].mode: must be a quoted string such as "0644": YAML reads an unquoted 0644 as the number 420`},
		{"not YAML", []string{"apiVersion: drover/v1", "apiVersion: [drover/v1"}, "parse: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := brokenCopy(t, tc.args...)
			code, _, errs := runDrover(t, "validate", "-f", path)
			if code != 1 || !strings.Contains(errs, path+": ") || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant it to contain %q", code, errs, tc.want)
			}
		})
	}
}

func TestValidateSeveralFiles(t *testing.T) {
	broken := brokenCopy(t, "kind: Cluster", "kind: Klaster")
	code, out, errs := runDrover(t, "validate", "-f", "../../examples/demo/cluster.yaml", "-f", broken)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "examples/demo/cluster.yaml: valid") || errs != broken+": kind: must be Cluster, not \"Klaster\"\n" {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, errs)
	}
}

func TestValidateUsage(t *testing.T) {
	if code, _, errs := runDrover(t, "validate"); code != 1 || !strings.Contains(errs, `required flag(s) "file" not set`) {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runDrover(t, "validate", "-f", "/nonexistent/cluster.yaml"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// TestInventoryProblemsNameTheirFile: a problem in the nodes of an
// inventoryFile is reported with the inventory's path, by validate (text
// and json) and by the commands that compile the manifest.
func TestInventoryProblemsNameTheirFile(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../examples/demo/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := regexp.MustCompile(`(?s)  nodes:\n.*?\n\n`).ReplaceAllString(string(example), "  inventoryFile: hosts.yaml\n\n")
	path := filepath.Join(dir, "cluster.yaml")
	hosts := filepath.Join(dir, "hosts.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, hosts, want string }{
		{"bad node", "nodes: [{name: N1, address: 127.0.2.1, roles: [master]}]\n", hosts + `: nodes[0].name: "N1" must match`},
		{"unknown field", "nodes: [{name: n1, adress: 127.0.2.1}]\n", hosts + ": nodes[0].adress: unknown field"},
		{"ansible", "[masters]\nn1 ansible_host=127.0.2.1\n", hosts + ": this looks like an Ansible INI inventory, not drover's YAML: see `drover import ansible`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(hosts, []byte(tc.hosts), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runDrover(t, "validate", "-f", path)
			if code != 1 || !strings.HasPrefix(errOut, tc.want) {
				t.Errorf("validate: exit %d, stderr:\n%s\nwant it to start with:\n%s", code, errOut, tc.want)
			}
			code, out, _ := runDrover(t, "validate", "-f", path, "-o", "json")
			if code != 1 || !strings.Contains(out, `"file": "`+hosts+`"`) && !strings.Contains(out, hosts+": this looks like") {
				t.Errorf("validate -o json: exit %d, the inventory file is not named:\n%s", code, out)
			}
			code, _, errOut = runDrover(t, "plan", "-f", path)
			if code != 1 || !strings.HasPrefix(errOut, "drover: "+tc.want) {
				t.Errorf("plan: exit %d, stderr:\n%s", code, errOut)
			}
		})
	}
}
