package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// TestFieldDocsCoverTypes: every field of every manifest type has a doc
// with a description, an example and an effect, and every doc names a
// field that exists, so docs/MANIFEST.md and the schema follow types.go.
func TestFieldDocsCoverTypes(t *testing.T) {
	used := map[string]bool{}
	for _, typ := range docTypes() {
		for _, f := range docFields(typ) {
			used[f.key] = true
			d, ok := fieldDocs[f.key]
			switch {
			case !ok:
				t.Errorf("%s: no entry in fieldDocs", f.key)
			case d.Description == "" || d.Example == "" || d.Effect == "":
				t.Errorf("%s: description, example and effect are all needed", f.key)
			}
		}
	}
	for key := range fieldDocs {
		if !used[key] {
			t.Errorf("fieldDocs[%q]: no such field in the manifest types", key)
		}
	}
	if len(used) < 60 {
		t.Errorf("only %d fields documented: did docTypes miss a type?", len(used))
	}
}

// TestManifestReference: docs/MANIFEST.md is what Reference generates.
func TestManifestReference(t *testing.T) {
	const path = "../docs/MANIFEST.md"
	got := Reference()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("docs/MANIFEST.md is stale: run go test ./manifests -run TestManifestReference -update")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

func validateAgainst(t *testing.T, s *jsonschema.Schema, manifest []byte) error {
	t.Helper()
	j, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(doc)
}

// manifestsLoadAccepts is every manifest in the repository that Load
// accepts: the examples, the package's example and the planner's
// fixtures.
func manifestsLoadAccepts(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	examples, _ := filepath.Glob("../examples/*/cluster.yaml")
	if len(examples) < 2 {
		t.Fatalf("examples: %v", examples)
	}
	files := append(examples, "../packaging/cluster.yaml.example")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	fixtures, _ := filepath.Glob("../reconciler/testdata/*.plantest")
	for _, f := range fixtures {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		manifest, _, _ := strings.Cut(string(b), "---- observed\n")
		out[f] = []byte(manifest)
	}
	for f, b := range out {
		if _, err := LoadBytes(f, b); err != nil {
			t.Fatalf("%s: Load refuses it: %v", f, err)
		}
	}
	return out
}

// TestSchemaAcceptsValidManifests: the schema refuses no manifest Load
// accepts, the examples first among them.
func TestSchemaAcceptsValidManifests(t *testing.T) {
	s := compileSchema(t)
	for f, b := range manifestsLoadAccepts(t) {
		if err := validateAgainst(t, s, b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSchemaRefusesMistakes: a misspelt field, a wrong type or a value
// outside an enum fails the schema, as it fails Load.
func TestSchemaRefusesMistakes(t *testing.T) {
	s := compileSchema(t)
	example, err := os.ReadFile("../examples/dcos/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"misspelt field", "    version: 3.8.0", "    verison: 3.8.0"},
		{"misspelt top-level field", "spec:", "specs:"},
		{"misspelt optional field", "    healthTimeout: 5m", "    healthTimout: 5m"},
		{"wrong type", "      quorum: true\n", "      quorum: [yes]\n"},
		{"not in enum", "    onFailure: rollback", "    onFailure: retry"},
		{"bad percentage", `maxUnavailable: "10%"`, `maxUnavailable: "ten"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(example, []byte(tc.old)) {
				t.Fatalf("example has no %q", tc.old)
			}
			bad := bytes.Replace(example, []byte(tc.old), []byte(tc.new), 1)
			if err := validateAgainst(t, s, bad); err == nil {
				t.Error("the schema accepts it")
			}
			if _, err := LoadBytes("bad.yaml", bad); err == nil {
				t.Error("Load accepts it: the case proves nothing")
			}
		})
	}
}

func TestProblemFile(t *testing.T) {
	for _, tc := range []struct{ manifest, path, file, field string }{
		{"dir/cluster.yaml", "spec.nodes[0].name", "dir/cluster.yaml", "spec.nodes[0].name"},
		{"dir/cluster.yaml", "hosts.yaml:nodes[1].name", "dir/hosts.yaml", "nodes[1].name"},
		{"dir/cluster.yaml", "/etc/drover/hosts.yaml:nodes[0]", "/etc/drover/hosts.yaml", "nodes[0]"},
	} {
		file, field := ProblemFile(tc.manifest, Problem{Path: tc.path})
		if file != tc.file || field != tc.field {
			t.Errorf("%s in %s: %s, %s; want %s, %s", tc.path, tc.manifest, file, field, tc.file, tc.field)
		}
	}
}

func TestLooksLikeAnsibleINI(t *testing.T) {
	for text, want := range map[string]bool{
		"[masters]\nm1\n":                         true,
		"; comment\n\n[all:vars]\nansible_user=x": true,
		"m1 ansible_host=10.0.0.1\n":              true,
		"nodes:\n  - {name: m1, address: a}\n":    false,
		"# [masters]\nnodes: []\n":                false,
		"nodes: [{name: m1, address: a}]\n":       false,
		"":                                        false,
	} {
		if got := looksLikeAnsibleINI([]byte(text)); got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
}
