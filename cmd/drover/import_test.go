package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportAnsible: the printed nodes block, pasted into a manifest as
// its inventoryFile, validates; warnings go to stderr, one a line.
func TestImportAnsible(t *testing.T) {
	inv := "../../manifests/testdata/ansible/production.ini"
	code, out, errs := runDrover(t, "import", "ansible", inv)
	if code != 0 || !strings.HasPrefix(out, "nodes:\n") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "warning: "+inv+": host db-b.example.com: ansible_become not mapped") {
		t.Errorf("stderr:\n%s", errs)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nodes.yaml"), []byte(out), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: imported}\nspec:\n  inventoryFile: nodes.yaml\n  components: []\n"), 0o644)
	if code, out, errs := runDrover(t, "validate", "-f", filepath.Join(dir, "cluster.yaml")); code != 0 || !strings.Contains(out, "valid (7 nodes") {
		t.Errorf("the imported nodes do not validate: exit %d\n%s%s", code, out, errs)
	}

	if code, _, errs := runDrover(t, "import", "ansible", filepath.Join(dir, "missing.ini")); code != 1 || !strings.Contains(errs, "missing.ini") {
		t.Errorf("missing inventory: exit %d, stderr %s", code, errs)
	}
}
