package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/test/harness"
)

// TestWrongChecksumChangesNothing: an artifact whose sha256 does not match
// the manifest fails the apply with an error naming the artifact and the
// node, and no node changes: same receipts, same active links, nothing new
// in the cache, no restart.
func TestWrongChecksumChangesNothing(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	before := map[string]string{}
	for _, n := range s.nodes() {
		before[n.Name] = s.footprint(t, n)
	}
	bad := s.arts[harness.ArtifactWrongChecksum]
	good := s.arts[harness.ArtifactNodeExporterNew]
	m := s.write(t, s.base().withNodeExporter(bad))

	r := s.run(t, m, "apply", "--yes")
	if r.Code == 0 {
		t.Fatalf("apply with a wrong checksum exited 0")
	}
	out := r.Stdout + r.Stderr
	if !strings.Contains(out, "checksum mismatch") {
		t.Errorf("output does not say checksum mismatch")
	}
	// The failure line names the node, the artifact file and both sums.
	var named bool
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "checksum mismatch") && strings.Contains(l, filepath.Base(bad.Path)) &&
			strings.Contains(l, bad.SHA256) && strings.Contains(l, good.SHA256) && namesNode(l, s) {
			named = true
			break
		}
	}
	if !named {
		t.Errorf("no error line names the node, the artifact %s and both sha256 sums", filepath.Base(bad.Path))
	}
	for _, n := range s.nodes() {
		if after := s.footprint(t, n); after != before[n.Name] {
			t.Errorf("%s changed by a failed apply:\nbefore:\n%s\nafter:\n%s", n.Name, before[n.Name], after)
		}
		cache := s.exec(t, n, "ls -A "+installRoot+"/cache")
		for _, sum := range []string{bad.SHA256, good.SHA256} {
			if strings.Contains(cache, sum) {
				t.Errorf("%s: cache holds %s after the failed apply: %s", n.Name, sum, cache)
			}
		}
		if v := s.active(t, n, "node-exporter"); !strings.HasSuffix(v, "/1.8.2") {
			t.Errorf("%s: active node-exporter is %q, want 1.8.2", n.Name, v)
		}
	}
	requireExporters(t, s.nodes(), "1.8.2")
}

// namesNode reports whether a line names one of the cluster's nodes.
func namesNode(line string, s *suite) bool {
	for _, n := range s.nodes() {
		if strings.Contains(line, n.Name) {
			return true
		}
	}
	return false
}
