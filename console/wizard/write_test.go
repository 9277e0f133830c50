package wizard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reviewed is the review of the three-node setup.
func reviewed(t *testing.T, f *fixture) Review {
	t.Helper()
	var r Review
	if code := f.post(t, "/api/v1/wizard/review", ReviewRequest{Setup: ptr(threeNodeSetup())}, &r); code != 200 || !r.Valid {
		t.Fatalf("review: %d valid=%v %+v", code, r.Valid, r.Problems)
	}
	return r
}

func TestWriteNewManifest(t *testing.T) {
	f := newFixture(t, nil)
	r := reviewed(t, f)
	var out Written
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest, BaseHash: r.BaseHash}, &out); code != 200 {
		t.Fatalf("write: %d", code)
	}
	got, err := os.ReadFile(f.manifestPath)
	if err != nil || string(got) != r.Manifest {
		t.Fatalf("manifest on disk differs (%v)", err)
	}
	if out.Backup != "" || out.Hash != sha256Hex(r.Manifest) {
		t.Errorf("written: %+v", out)
	}
	st, _ := os.Stat(f.manifestPath)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if left := leftovers(t, f); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestWriteKeepsABackupAndRefusesStale(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	f := newFixture(t, func(o *Options) { o.Now = func() time.Time { return now } })
	old := "# hand-written\n" + reviewed(t, f).Manifest
	if err := os.WriteFile(f.manifestPath, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reviewed(t, f)
	if r.BaseHash != sha256Hex(old) || !r.ManifestExists {
		t.Fatalf("review saw %q exists=%v", r.BaseHash, r.ManifestExists)
	}

	// Someone edits the file after the review: the write must not lose it.
	edited := old + "# edited meanwhile\n"
	if err := os.WriteFile(f.manifestPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest, BaseHash: r.BaseHash}, &resp); code != 409 {
		t.Fatalf("stale write: %d %v, want 409", code, resp)
	}
	if got, _ := os.ReadFile(f.manifestPath); string(got) != edited {
		t.Fatal("a stale write changed the file")
	}
	// A write that believes there was no file is stale too.
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest}, &resp); code != 409 {
		t.Fatalf("write over a file the review did not see: %d, want 409", code)
	}

	r = reviewed(t, f)
	var out Written
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest, BaseHash: r.BaseHash}, &out); code != 200 {
		t.Fatalf("write: %d", code)
	}
	wantBackup := f.manifestPath + ".bak-20250304T050607Z"
	if out.Backup != wantBackup {
		t.Errorf("backup %q, want %q", out.Backup, wantBackup)
	}
	if b, _ := os.ReadFile(wantBackup); string(b) != edited {
		t.Errorf("backup holds %q, want the previous file", b)
	}
	if got, _ := os.ReadFile(f.manifestPath); string(got) != r.Manifest {
		t.Error("manifest not replaced")
	}

	// A second write in the same second gets its own backup name.
	r = reviewed(t, f)
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest, BaseHash: r.BaseHash}, &out); code != 200 {
		t.Fatalf("second write: %d", code)
	}
	if out.Backup != wantBackup+"-1" {
		t.Errorf("second backup %q", out.Backup)
	}
	if b, _ := os.ReadFile(wantBackup); string(b) != edited {
		t.Error("the first backup was overwritten")
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	f := newFixture(t, nil)
	r := reviewed(t, f)
	bad := strings.Replace(r.Manifest, "name: lab", "name: Lab!", 1)
	var resp struct {
		Error    string        `json:"error"`
		Problems []ProblemJSON `json:"problems"`
	}
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: bad, BaseHash: r.BaseHash}, &resp); code != 422 {
		t.Fatalf("invalid write: %d, want 422", code)
	}
	if len(resp.Problems) == 0 || resp.Problems[0].Path != "metadata.name" {
		t.Errorf("problems: %+v", resp.Problems)
	}
	if _, err := os.Stat(f.manifestPath); !os.IsNotExist(err) {
		t.Error("an invalid manifest was written")
	}
	// A manifest that parses and validates but does not compile (a
	// template that fails for a node) is refused too, as the daemon would.
	broken := strings.Replace(r.Manifest, `{{ add (index .Node.Index "master") 1 }}`, `{{ index .Node.Index "nope" | printf "%d" | len | add "x" }}`, 1)
	if broken == r.Manifest {
		t.Fatal("test manifest lacks the myid template")
	}
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: broken, BaseHash: r.BaseHash}, &resp); code != 422 {
		t.Fatalf("uncompilable write: %d %+v, want 422", code, resp)
	}
	if left := leftovers(t, f); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

func TestWriteRefusesASymlinkedManifest(t *testing.T) {
	f := newFixture(t, nil)
	r := reviewed(t, f)
	target := filepath.Join(f.dir, "elsewhere.yaml")
	if err := os.WriteFile(target, []byte(r.Manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, f.manifestPath); err != nil {
		t.Fatal(err)
	}
	r = reviewed(t, f)
	if code := f.post(t, "/api/v1/wizard/write", WriteRequest{Manifest: r.Manifest, BaseHash: r.BaseHash}, nil); code != 409 {
		t.Errorf("write through a symlink: %d", code)
	}
	if st, err := os.Lstat(f.manifestPath); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
}

// leftovers lists what is in the manifest's directory besides the
// manifest and its backups.
func leftovers(t *testing.T, f *fixture) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(f.manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); n != filepath.Base(f.manifestPath) && !strings.Contains(n, ".bak-") {
			out = append(out, n)
		}
	}
	return out
}
