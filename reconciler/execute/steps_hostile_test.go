package execute

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/internal/localnode"
	"github.com/drover-project/drover/reconciler/plan"
)

// Hostile input on the node side (issue 24): an artifact or a manifest
// that would make drover write outside its paths, and an install root
// that holds what drover did not write. Every case runs the real on-node
// scripts against a temp dir (localnode_test.go) and checks the files
// outside: "elsewhere" stands for /etc, and holds a file that must stay.

const victimContent = "precious\n"

// hostileNode is a fixture plus a directory outside the install root
// that nothing may write to, holding victim.
func hostileNode(t *testing.T) (f *fixture, elsewhere string) {
	t.Helper()
	f = newFixture(t)
	elsewhere = filepath.Join(f.n.Dir, "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(elsewhere, "victim"), []byte(victimContent), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, elsewhere
}

// requireUntouched fails unless dir holds exactly victim, unchanged.
func requireUntouched(t *testing.T, dir string) {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if !slices.Equal(names, []string{"victim"}) {
		t.Errorf("%s holds %q after the action, want only victim", dir, names)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "victim")); string(got) != victimContent {
		t.Errorf("victim was overwritten: %q", got)
	}
}

// withArtifact is app 1.0.0 without unit or health check, unpacked from
// an artifact of entries (plus bin/app), with files relative to its
// version dir.
func (f *fixture) withArtifact(t *testing.T, name string, entries []localnode.TarEntry, rel ...string) *plan.DesiredComponent {
	t.Helper()
	want := f.component(t, "1.0.0", false)
	want.Unit, want.Health = nil, nil
	want.ArtifactPath = filepath.Join(f.arts, name+".tar.gz")
	want.ArtifactSHA256 = localnode.WriteTarGz(t, want.ArtifactPath,
		append([]localnode.TarEntry{{Name: "bin/app", Mode: 0o755, Content: "#!/bin/sh\necho app\n"}}, entries...)...)
	vdir := manifests.VersionDir(f.n.Root, "app", "1.0.0")
	var files []manifests.RenderedFile
	for _, r := range rel {
		files = append(files, manifests.RenderedFile{Path: filepath.Join(vdir, r), Mode: 0o644, Content: []byte("hostile=1\n")})
	}
	return f.withFiles(want, files)
}

// TestHostileArtifactSymlinks: a symlink in an artifact that leaves the
// version dir is never written through: not by the manifest's files, not
// by drover's own names, not by tar. A file that would go through one is
// refused with ErrRefused and a message naming it; links that stay
// inside the version dir work as before.
func TestHostileArtifactSymlinks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entries func(elsewhere string) []localnode.TarEntry
		files   []string
		refused bool   // the install fails with ErrRefused
		inside  string // a file that must hold the content, relative to the version dir
	}{
		{name: "absolute link to a dir", files: []string{"conf/app.conf"}, refused: true,
			entries: func(e string) []localnode.TarEntry { return []localnode.TarEntry{{Name: "conf", Link: e}} }},
		{name: "relative link climbing out", files: []string{"conf/app.conf"}, refused: true,
			entries: func(string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "conf", Link: "../../../../../elsewhere"}}
			}},
		{name: "link through a link", files: []string{"conf/app.conf"}, refused: true,
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "sub", Link: e}, {Name: "conf", Link: "sub"}}
			}},
		{name: "a new dir below a link", files: []string{"conf/new/app.conf"}, refused: true,
			entries: func(e string) []localnode.TarEntry { return []localnode.TarEntry{{Name: "conf", Link: e}} }},
		{name: "the file itself is a link out", files: []string{"conf/victim"}, inside: "conf/victim",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "conf/readme", Mode: 0o644, Content: "x"}, {Name: "conf/victim", Link: e + "/victim"}}
			}},
		{name: "completion mark is a link out",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: manifests.CompleteMarker, Link: e + "/victim"}}
			}},
		{name: "drover names are links out",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: keptFilesDir, Link: e}, {Name: keptUnitName, Link: e + "/victim"}, {Name: manifests.EnvFileName, Link: e + "/victim"}}
			}},
		{name: "tar writing through its own link",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "conf", Link: e}, {Name: "conf/planted", Mode: 0o644, Content: "planted\n"}}
			}},
		{name: "hard links out",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "h1", HardLink: e + "/victim"}, {Name: "h2", HardLink: "../../../../../elsewhere/victim"}}
			}},
		{name: "member names climbing out",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "../../../../../elsewhere/victim", Mode: 0o644, Content: "pwned\n"}, {Name: e + "/victim", Mode: 0o644, Content: "pwned\n"}}
			}},
		{name: "a member rewriting a link out",
			entries: func(e string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "s", Link: e + "/victim"}, {Name: "h", HardLink: "s"}, {Name: "h", Mode: 0o644, Content: "pwned\n"}, {Name: "s", Mode: 0o644, Content: "pwned\n"}}
			}},
		{name: "a link that stays inside is fine", files: []string{"conf/app.conf"}, inside: "etc/app.conf",
			entries: func(string) []localnode.TarEntry {
				return []localnode.TarEntry{{Name: "etc/readme", Mode: 0o644, Content: "x"}, {Name: "conf", Link: "etc"}}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, elsewhere := hostileNode(t)
			want := f.withArtifact(t, "hostile", tc.entries(elsewhere), tc.files...)
			err := f.do(t, plan.ActionInstall, want)
			switch {
			case tc.refused && !errors.Is(err, ErrRefused):
				t.Errorf("install: %v, want %v", err, ErrRefused)
			case tc.refused && !strings.Contains(err.Error(), "symbolic link"):
				t.Errorf("install: %v does not say why", err)
			case !tc.refused && err != nil && tc.inside != "":
				t.Errorf("install: %v", err)
			}
			requireUntouched(t, elsewhere)
			if tc.inside != "" {
				p := filepath.Join(manifests.VersionDir(f.n.Root, "app", "1.0.0"), tc.inside)
				if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s is not a regular file in the version dir: %v", tc.inside, err)
				} else if got := readFile(t, p); got != "hostile=1\n" {
					t.Errorf("%s holds %q", tc.inside, got)
				}
			}
		})
	}
}

// TestHostileReconfigureThroughLink: a version dir already unpacked with
// a link out (an earlier drover unpacked it) is not written through by a
// later reconfigure either.
func TestHostileReconfigureThroughLink(t *testing.T) {
	t.Parallel()
	f, elsewhere := hostileNode(t)
	v1 := f.withArtifact(t, "data-link", []localnode.TarEntry{{Name: "data", Link: elsewhere}}, "conf/app.conf")
	f.mustDo(t, plan.ActionInstall, v1)
	v1b := f.withArtifact(t, "data-link", []localnode.TarEntry{{Name: "data", Link: elsewhere}}, "conf/app.conf", "data/app.conf")
	if err := f.do(t, plan.ActionReconfigure, v1b); !errors.Is(err, ErrRefused) {
		t.Errorf("reconfigure through data -> %s: %v, want %v", elsewhere, err, ErrRefused)
	}
	requireUntouched(t, elsewhere)
}

// TestHostileRollbackRestoresOnlyRecordedFiles: a rollback puts back
// only the kept copies of files the receipt says drover wrote, never a
// file someone planted under .drover-files (as a manifest path
// ".drover-files/<abs>" did before it was reserved), so it cannot create
// an arbitrary path setuid-root.
func TestHostileRollbackRestoresOnlyRecordedFiles(t *testing.T) {
	t.Parallel()
	f, elsewhere := hostileNode(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	vdir := manifests.VersionDir(f.n.Root, "app", "1.0.0")
	planted := filepath.Join(elsewhere, "suid")
	for p, mode := range map[string]os.FileMode{keptPath(vdir, planted): 0o4755, keptPath(vdir, elsewhere+"/victim"): 0o644} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\nplanted\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	haveBefore := f.n.Observe(t, "app")
	bad := f.component(t, "2.0.0", true)
	up := plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), up, bad, haveBefore); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("upgrade to a broken version: %v, want ErrUnhealthy", err)
	}
	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, From: "2.0.0", To: "1.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, bad, haveBefore); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	requireUntouched(t, elsewhere)
	// The recorded file outside is still restored.
	if got := readFile(t, v1.Files[1].Path); got != string(v1.Files[1].Content) {
		t.Errorf("%s after rollback: %q", v1.Files[1].Path, got)
	}
}

// TestHostileInstallRootNotDrovers: an install root that already holds
// what drover did not write (installRoot: /var, with its own cache/) is
// refused before anything is written there; a new or empty dir, or one
// an earlier drover made (no marker yet, only drover's names and its
// lock), is taken and marked.
func TestHostileInstallRootNotDrovers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		before  map[string]string // files in the root beforehand
		refused bool
	}{
		{name: "foreign cache", before: map[string]string{"cache/important.db": "data\n"}, refused: true},
		{name: "foreign files beside drover's names", before: map[string]string{"lock": "", "cache/x": "x", "log/syslog": "x"}, refused: true},
		{name: "drover's names without its lock", before: map[string]string{"packages/app/notes": "x"}, refused: true},
		{name: "a foreign dotfile", before: map[string]string{".profile": "x"}, refused: true},
		{name: "missing"},
		{name: "empty", before: map[string]string{}},
		{name: "an earlier drover's root", before: map[string]string{"lock": "", "receipts/other.json": "{}\n", "cache/x": "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tc.before != nil {
				if err := os.MkdirAll(f.n.Root, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for p, c := range tc.before {
				p = filepath.Join(f.n.Root, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := f.do(t, plan.ActionInstall, f.component(t, "1.0.0", false))
			marker := filepath.Join(f.n.Root, manifests.RootMarker)
			if !tc.refused {
				if err != nil {
					t.Fatalf("install: %v", err)
				}
				if _, err := os.Stat(marker); err != nil {
					t.Errorf("no marker after the install: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not drover's") {
				t.Fatalf("install into a root holding %v: %v, want %v saying the root is not drover's", tc.before, err, ErrRefused)
			}
			var got []string
			filepath.WalkDir(f.n.Root, func(p string, d fs.DirEntry, err error) error {
				if !d.IsDir() {
					rel, _ := filepath.Rel(f.n.Root, p)
					got = append(got, rel)
				}
				return nil
			})
			var want []string
			for p := range tc.before {
				want = append(want, p)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("root holds %q after the refused install, want %q", got, want)
			}
		})
	}
}

// TestHostilePruneKeepsForeignCacheFiles: pruning deletes only the
// cache entries drover names itself (<sha256>.tar.gz and its .part),
// never another file someone put in the cache dir.
func TestHostilePruneKeepsForeignCacheFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	cache := filepath.Join(f.n.Root, "cache")
	foreign := []string{"notes.txt", ".hidden", "abc.tar.gz", strings.Repeat("g", 64) + ".tar.gz"}
	for _, n := range foreign {
		if err := os.WriteFile(filepath.Join(cache, n), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stray := filepath.Join(cache, "."+strings.Repeat("a", 64)+".tar.gz.part")
	if err := os.WriteFile(stray, []byte("cut off"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := f.component(t, "2.0.0", false)
	f.mustDo(t, plan.ActionUpgrade, v2)
	f.mustDo(t, plan.ActionUpgrade, f.component(t, "3.0.0", false)) // prunes 1.0.0's artifact
	for _, n := range foreign {
		if _, err := os.Stat(filepath.Join(cache, n)); err != nil {
			t.Errorf("prune deleted %s, which drover did not write: %v", n, err)
		}
	}
	if _, err := os.Stat(stray); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a stray upload of drover's is still there: %v", err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*.tar.gz"))
	if len(entries) != 2+2 { // 2.0.0's and 3.0.0's, and two foreign names
		t.Errorf("cache after two upgrades: %q", entries)
	}
}
