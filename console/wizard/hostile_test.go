package wizard

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestArtifactsListOnlyFilesInside: the artifacts list is served
// without a token, so a symlink in the folder to a file outside it must
// not be hashed and listed (that would tell anyone the sha256 of any file
// the daemon can read); a FIFO must not block the scan. Links that stay
// inside the folder still work.
func TestArtifactsListOnlyFilesInside(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app-1.0.tar.gz"), []byte("tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"leak-1.0.tar.gz":  outside,
		"up-1.0.tar.gz":    "../" + filepath.Base(filepath.Dir(outside)) + "/secret",
		"alias-1.0.tar.gz": "app-1.0.tar.gz",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe-1.0.tar.gz"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &artifactScanner{dir: dir}
	type result struct {
		arts    []Artifact
		skipped []Skipped
		err     error
	}
	done := make(chan result, 1)
	go func() {
		a, sk, err := s.scan()
		done <- result{a, sk, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the scan blocks")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var listed []string
	for _, a := range r.arts {
		listed = append(listed, a.File)
	}
	if got := strings.Join(listed, " "); got != "alias-1.0.tar.gz app-1.0.tar.gz" {
		t.Errorf("listed %q, want only the file and the link inside the folder", got)
	}
	reasons := map[string]string{}
	for _, sk := range r.skipped {
		reasons[sk.File] = sk.Reason
	}
	for _, f := range []string{"leak-1.0.tar.gz", "up-1.0.tar.gz", "pipe-1.0.tar.gz"} {
		if reasons[f] == "" {
			t.Errorf("%s not reported as skipped: %v", f, reasons)
		}
	}
}

// TestWizardHostileManifest: the wizard's review of a manifest that is a
// FIFO answers at once, and a template bomb sent for review is stopped by
// the templates' budget and reported with its field.
func TestWizardHostileManifest(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cluster.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWizard(Options{ManifestPath: fifo})
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s blocks", what)
		}
	}
	within("hashing a FIFO manifest", func() {
		if hash, exists := w.currentHash(); !exists || !strings.Contains(hash, "not a regular file") {
			t.Errorf("currentHash of a FIFO: %q %v", hash, exists)
		}
	})
	bomb := `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes: [{name: n1, address: 10.0.0.1}]
  components:
    - name: app
      version: "1"
      artifact: {url: "https://example.com/a.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files: [{path: conf/x, template: "{{range 100000}}{{range 100000}}{{end}}{{end}}"}]
`
	within("checking a template bomb", func() {
		_, problems, err := w.check([]byte(bomb))
		if err == nil {
			t.Fatal("accepted")
		}
		found := false
		for _, p := range problems {
			if p.Path == "spec.components[0].files[0].template" && strings.Contains(p.Message, "over budget") {
				found = true
			}
		}
		if !found {
			t.Errorf("problems: %v", problems)
		}
	})
}
