package execute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/internal/localnode"
	"github.com/drover-project/drover/reconciler/plan"
)

// fixture is a LocalNode, an executor for it, its logs, and builders for
// the component "app" in several versions.
type fixture struct {
	n    *localnode.LocalNode
	e    *Executor
	logs *observer.ObservedLogs
	arts string // dir holding the artifacts
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	n := localnode.NewLocalNode(t)
	core, logs := observer.New(zap.DebugLevel)
	f := &fixture{n: n, logs: logs, arts: filepath.Join(n.Dir, "artifacts")}
	f.e = localExecutor(n, zap.New(core))
	f.e.Now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	if err := os.MkdirAll(f.arts, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// artifact writes app's tarball for version v; a broken one has a binary
// that cannot run and fails its health check.
func (f *fixture) artifact(t *testing.T, v string, broken bool) (string, string) {
	t.Helper()
	p := filepath.Join(f.arts, "app-"+v+".tar.gz")
	bin := localnode.TarEntry{Name: "bin/app", Mode: 0o755, Content: "#!/bin/sh\necho app " + v + "\n"}
	entries := []localnode.TarEntry{{Name: "share/readme", Mode: 0o644, Content: "app " + v + "\n"}}
	if broken {
		bin.Mode = 0o644
		entries = append(entries, localnode.TarEntry{Name: "unhealthy", Mode: 0o644, Content: "x"})
	}
	return p, localnode.WriteTarGz(t, p, append(entries, bin)...)
}

// component is app version v as the manifest wants it: a config file in
// the version dir, an env file outside the install root, a unit and a
// health check, plus any extra files.
func (f *fixture) component(t *testing.T, v string, broken bool, extra ...manifests.RenderedFile) *plan.DesiredComponent {
	t.Helper()
	p, sha := f.artifact(t, v, broken)
	files := append([]manifests.RenderedFile{
		{Path: manifests.VersionDir(f.n.Root, "app", v) + "/conf/app.conf", Mode: 0o640, Content: []byte("version=" + v + "\n")},
		{Path: f.n.Outside + "/app.env", Mode: 0o600, Content: []byte("SECRET=s3cr3t\n")},
	}, extra...)
	return f.withFiles(&plan.DesiredComponent{
		Name: "app", Version: v, ArtifactPath: p, ArtifactSHA256: sha,
		Unit:   []byte("[Unit]\nDescription=app\n[Service]\nExecStart=" + manifests.ActiveDir(f.n.Root, "app") + "/bin/app\n[Install]\nWantedBy=multi-user.target\n"),
		Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 9}},
	}, files)
}

// withFiles sets the files and recomputes the hashes.
func (f *fixture) withFiles(c *plan.DesiredComponent, files []manifests.RenderedFile) *plan.DesiredComponent {
	c.Files = files
	c.ConfigHash = manifests.ConfigHash(manifests.Digests(files))
	if c.Unit != nil {
		c.UnitHash = manifests.SHA256Hex(c.Unit)
	}
	return c
}

// do runs one action with what the node has now as "have".
func (f *fixture) do(t *testing.T, kind plan.ActionKind, want *plan.DesiredComponent) error {
	t.Helper()
	a := plan.Action{Node: "local", Component: "app", Kind: kind}
	if want != nil {
		a.Component, a.To = want.Name, want.Version
	}
	return f.e.Do(context.Background(), f.n.DesiredNode(), a, want, f.n.Observe(t, a.Component))
}

func (f *fixture) mustDo(t *testing.T, kind plan.ActionKind, want *plan.DesiredComponent) {
	t.Helper()
	if err := f.do(t, kind, want); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
}

// changedSteps are the steps the logs say changed the node.
func (f *fixture) changedSteps() []string {
	var out []string
	for _, e := range f.logs.FilterMessage("step changed node").All() {
		out = append(out, e.ContextMap()["step"].(string))
	}
	return out
}

func (f *fixture) receipt(t *testing.T) probes.Receipt {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.n.Root, "receipts", "app.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r probes.Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// entry is one path of a node snapshot.
type entry struct {
	Kind  string // dir, file, link
	Mode  fs.FileMode
	Data  string // file content (receipts: with the time zeroed), link target
	MTime time.Time
	Ino   uint64
}

// snapshot records everything under the node's install root, unit dir
// and outside dir, keyed by path relative to the node's dir. So that two
// nodes compare equal, the node's dir reads as $DIR in contents and the
// receipts' time and path-derived hashes are zeroed.
func snapshot(t *testing.T, n *localnode.LocalNode) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	for _, top := range []string{n.Root, n.UnitDir, n.Outside} {
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == top {
				return filepath.SkipDir
			}
			if err != nil {
				return err
			}
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(n.Dir, p)
			// Kept copies of files outside the root mirror their absolute
			// path, which holds the node's temp dir: name it $DIR, and
			// leave out the dirs above it, which differ from node to node.
			if i := strings.Index(rel, keptFilesDir+"/"); i >= 0 {
				mirrored := rel[i+len(keptFilesDir):]
				if strings.HasPrefix(n.Dir, mirrored+"/") {
					return nil
				}
				rel = rel[:i+len(keptFilesDir)] + "/$DIR" + strings.TrimPrefix(mirrored, n.Dir)
			}
			e := entry{Mode: info.Mode(), MTime: info.ModTime(), Ino: info.Sys().(*syscall.Stat_t).Ino}
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				e.Kind = "link"
				l, _ := os.Readlink(p)
				e.Data = strings.ReplaceAll(l, n.Dir, "$DIR")
			case info.IsDir():
				e.Kind = "dir"
			default:
				e.Kind = "file"
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if filepath.Base(filepath.Dir(p)) == "receipts" {
					var r probes.Receipt
					if err := json.Unmarshal(b, &r); err != nil {
						t.Errorf("receipt %s: %v", p, err)
					}
					r.Time, r.ConfigHash, r.UnitHash = time.Time{}, "", ""
					b, _ = json.Marshal(r)
				}
				e.Data = strings.ReplaceAll(string(b), n.Dir, "$DIR")
			}
			out[rel] = e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// content drops times and inodes, keeping what a node should converge to.
func content(s map[string]entry) map[string]entry {
	out := make(map[string]entry, len(s))
	for k, v := range s {
		v.MTime, v.Ino = time.Time{}, 0
		out[k] = v
	}
	return out
}

func diffSnapshots(a, b map[string]entry) []string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if bv, ok := b[k]; !ok {
			d = append(d, "only before: "+k)
		} else if bv != a[k] {
			d = append(d, "differs: "+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			d = append(d, "only after: "+k)
		}
	}
	return d
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func count(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func TestActionInstallFresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)

	root := f.n.Root
	if l, err := os.Readlink(filepath.Join(root, "active", "app")); err != nil || l != "../packages/app/1.0.0" {
		t.Errorf("active link = %q, %v", l, err)
	}
	if got := readFile(t, filepath.Join(root, "packages/app/1.0.0/.complete")); got != want.ArtifactSHA256+"\n" {
		t.Errorf(".complete = %q, want the artifact sha256", got)
	}
	if got := readFile(t, filepath.Join(root, "active/app/bin/app")); !strings.Contains(got, "app 1.0.0") {
		t.Errorf("unpacked binary = %q", got)
	}
	if m := modeOf(t, filepath.Join(root, "active/app/bin/app")); m != 0o755 {
		t.Errorf("binary mode %o, want 755 from the tarball", m)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "active/app/bin/app"), &st); err != nil || st.Uid == 4242 {
		t.Errorf("unpacked file kept the tarball's owner 4242 (uid %d): want --no-same-owner", st.Uid)
	}
	for _, rf := range want.Files {
		if got := readFile(t, rf.Path); got != string(rf.Content) {
			t.Errorf("%s = %q, want %q", rf.Path, got, rf.Content)
		}
		if m := modeOf(t, rf.Path); m != rf.Mode {
			t.Errorf("%s mode %o, want %o", rf.Path, m, rf.Mode)
		}
	}
	if got := readFile(t, filepath.Join(f.n.UnitDir, "drover-app.service")); got != string(want.Unit) {
		t.Errorf("unit file = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "cache", want.ArtifactSHA256+".tar.gz")); err != nil {
		t.Errorf("artifact not cached: %v", err)
	}
	for _, d := range []string{"", "packages", "active", "receipts", "cache"} {
		if m := modeOf(t, filepath.Join(root, d)); m != 0o755 {
			t.Errorf("dir %q mode %o, want 755", d, m)
		}
	}
	r := f.receipt(t)
	wantR := probes.Receipt{Component: "app", Version: "1.0.0", ArtifactSHA256: want.ArtifactSHA256, ConfigHash: want.ConfigHash,
		UnitHash: want.UnitHash, Generation: "gen-1", Time: f.e.Now(), Files: []string{want.Files[0].Path, want.Files[1].Path}}
	if !r.Time.Equal(wantR.Time) || r.Version != wantR.Version || r.ArtifactSHA256 != wantR.ArtifactSHA256 || r.ConfigHash != wantR.ConfigHash ||
		r.UnitHash != wantR.UnitHash || r.Generation != wantR.Generation || r.Previous != "" || !slices.Equal(r.Files, wantR.Files) {
		t.Errorf("receipt = %+v\nwant %+v", r, wantR)
	}
	if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
		t.Errorf("unit is %s, want active", s)
	}
	calls := f.n.SystemctlCalls(t)
	for _, c := range []string{"daemon-reload", "enable --quiet drover-app.service", "restart drover-app.service"} {
		if !slices.Contains(calls, c) {
			t.Errorf("systemctl calls %q lack %q", calls, c)
		}
	}
	wantSteps := []string{"ensure dirs", "upload artifact", "unpack", "write files", "write unit", "keep unit", "switch active", "restart unit", "prune", "write receipt"}
	if got := f.n.Runner.Steps(); !slices.Equal(got, wantSteps) {
		t.Errorf("steps = %q\nwant %q", got, wantSteps)
	}
	// The receipt is written last: nothing runs after it.
	if got := f.changedSteps(); got[len(got)-1] != "write receipt" {
		t.Errorf("last changing step %q, want write receipt", got[len(got)-1])
	}
}

func TestActionInstallTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)
	before := snapshot(t, f.n)
	f.n.ResetCalls(t)
	f.logs.TakeAll()

	f.mustDo(t, plan.ActionInstall, want)

	after := snapshot(t, f.n)
	for k, b := range before {
		a := after[k]
		if strings.Contains(k, "receipts") {
			continue // rewritten by design: the receipt records the time
		}
		if a != b {
			t.Errorf("%s changed: %+v -> %+v", k, b, a)
		}
	}
	if d := diffSnapshots(content(before), content(after)); len(d) > 0 {
		t.Errorf("second install changed the node: %q", d)
	}
	steps := f.n.Runner.Steps()
	for _, s := range []string{"upload artifact", "unpack"} {
		if slices.Contains(steps, s) {
			t.Errorf("second install ran %q (steps %q)", s, steps)
		}
	}
	calls := f.n.SystemctlCalls(t)
	if n := count(calls, "daemon-reload") + count(calls, "enable"); n != 0 {
		t.Errorf("second install reloaded or enabled: %q", calls)
	}
	// Only the restart (the action asks for one) and the receipt change.
	if got := f.changedSteps(); !slices.Equal(got, []string{"restart unit", "write receipt"}) {
		t.Errorf("changing steps = %q", got)
	}
}

// TestActionInstallResumesAfterCutAtEveryLine cuts a fresh install in
// every step after every complete command of the step's script (the
// script runs up to there, then the connection is lost), runs install
// again, and checks the node ends exactly as after an uncut install, with
// no temp file left behind.
//
// For speed, each step's subtest saves the node as it is just before the
// step once, and per cut restores it and runs the truncated script alone;
// a cut that leaves a node state already resumed from is not resumed
// again. Cut points inside an unfinished compound command are the same
// cut as the one before it (sh runs nothing of it) and cuts inside the
// preamble change nothing, so those are left out.
func TestActionInstallResumesAfterCutAtEveryLine(t *testing.T) {
	t.Parallel()
	ref := newFixture(t)
	ref.mustDo(t, plan.ActionInstall, ref.component(t, "1.0.0", false))
	wantSnap := content(snapshot(t, ref.n))
	head := strings.Count(lockedPreamble("/x", time.Second), "\n") + 1

	var mu sync.Mutex
	tried, resumed := 0, 0
	for _, step := range ref.n.Runner.Steps() {
		t.Run(strings.ReplaceAll(step, " ", "-"), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			want := f.component(t, "1.0.0", false)
			// Stop the install just before the step, keeping its script and stdin.
			var script string
			var stdin []byte
			f.n.Runner.Hook = func(label, s string, in []byte) (string, error) {
				if label != "step: "+step {
					return s, nil
				}
				script, stdin = s, in
				return "exit 0", errors.New("stopped before " + step)
			}
			if err := f.do(t, plan.ActionInstall, want); err == nil {
				t.Fatal("install did not stop")
			}
			f.n.Runner.Hook = nil
			before := filepath.Join(t.TempDir(), "before")
			copyTree(t, f.n.Dir, before)

			lines := strings.SplitAfter(script, "\n")
			seen := map[string]bool{}
			for cut := head; cut <= len(lines); cut++ {
				part := strings.Join(lines[:cut], "")
				if exec.Command("/bin/sh", "-n", "-c", part).Run() != nil {
					continue
				}
				mu.Lock()
				tried++
				mu.Unlock()
				restoreTree(t, before, f.n.Dir)
				if _, err := f.n.Runner.Run(context.Background(), f.n.Target, part, bytes.NewReader(stdin)); err != nil {
					t.Fatalf("cut at line %d: %v", cut, err)
				}
				key := nodeState(t, f.n)
				if seen[key] {
					continue
				}
				seen[key] = true
				mu.Lock()
				resumed++
				mu.Unlock()
				if err := f.do(t, plan.ActionInstall, want); err != nil {
					t.Fatalf("cut at line %d: resumed install: %v", cut, err)
				}
				if d := diffSnapshots(wantSnap, content(snapshot(t, f.n))); len(d) > 0 {
					t.Fatalf("cut at line %d: node differs from an uncut install: %q", cut, d)
				}
				if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
					t.Fatalf("cut at line %d: unit %s", cut, s)
				}
				if r := f.receipt(t); r.ConfigHash != want.ConfigHash || r.UnitHash != want.UnitHash {
					t.Fatalf("cut at line %d: receipt %+v", cut, r)
				}
			}
			if len(seen) < 2 && step != "prune" {
				t.Errorf("no cut changed the node: %d states", len(seen))
			}
		})
	}
	t.Cleanup(func() {
		if !t.Failed() && (tried < 60 || resumed < 25) {
			t.Errorf("only %d cuts tried, %d states resumed from", tried, resumed)
		}
		t.Logf("%d cuts tried, %d distinct states resumed from", tried, resumed)
	})
}

// nodeState is the node's content and its fake systemd's state, as one
// string, to tell apart the states cuts leave.
func nodeState(t *testing.T, n *localnode.LocalNode) string {
	t.Helper()
	var b strings.Builder
	snap := content(snapshot(t, n))
	for _, k := range slices.Sorted(maps.Keys(snap)) {
		fmt.Fprintf(&b, "%s %+v\n", k, snap[k])
	}
	err := filepath.WalkDir(n.State, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %s\n", p, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// copyTree copies dirs, files (with modes) and symlinks from src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		case info.IsDir():
			if err := os.MkdirAll(to, 0o700); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, data, 0o600); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// restoreTree makes dst a copy of src again.
func restoreTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	copyTree(t, src, dst)
}

// TestActionInstallResumesFromLeftovers plants what cut-off steps leave
// behind (a partial upload, a half-unpacked temp dir, an incomplete
// version dir, temp link, unit and receipt temps, a stray rendered-file
// temp) and checks install ends as if they were never there.
func TestActionInstallResumesFromLeftovers(t *testing.T) {
	t.Parallel()
	ref := newFixture(t)
	ref.mustDo(t, plan.ActionInstall, ref.component(t, "1.0.0", false))
	wantSnap := content(snapshot(t, ref.n))

	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	root := f.n.Root
	plant := map[string]string{
		"cache/." + want.ArtifactSHA256 + ".tar.gz.part": "partial",
		"packages/app/.1.0.0.tmp/bin/app":                "half",
		"packages/app/1.0.0/bin/app":                     "incomplete, no .complete",
		"receipts/.app.json.tmp":                         "{",
		"lock":                                           "", // every step of an earlier drover took it
	}
	for p, c := range plant {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "active"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../packages/app/0.9", filepath.Join(root, "active", ".app.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.n.UnitDir, ".drover-app.service.tmp"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	envTmp := filepath.Join(f.n.Outside, ".drover-"+manifests.SHA256Hex([]byte(want.Files[1].Path))[:16]+".tmp")
	if err := os.MkdirAll(f.n.Outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envTmp, []byte("SECRET=half"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.mustDo(t, plan.ActionInstall, want)
	if d := diffSnapshots(wantSnap, content(snapshot(t, f.n))); len(d) > 0 {
		t.Fatalf("node differs from a clean install: %q", d)
	}
}

func TestActionInstallChecksumMismatchLocal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	if err := os.WriteFile(want.ArtifactPath, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := f.do(t, plan.ActionInstall, want)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), want.ArtifactPath) || !strings.Contains(err.Error(), "expected "+want.ArtifactSHA256) {
		t.Fatalf("err = %v, want a checksum mismatch naming %s", err, want.ArtifactPath)
	}
	if l := f.n.Runner.Labels(); len(l) != 0 {
		t.Errorf("a bad local artifact still ran %q on the node", l)
	}
	if _, err := os.Stat(f.n.Root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("install root created: %v", err)
	}
}

func TestExecutorLocalHashCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p, sha := f.artifact(t, "1.0.0", false)
	if got, err := f.e.localSHA256(p); err != nil || got != sha {
		t.Fatalf("hash = %s, %v; want %s", got, err, sha)
	}
	info, _ := os.Stat(p)
	// Same size and mtime, other bytes: the cached hash is used.
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.e.localSHA256(p); got != sha {
		t.Errorf("rehashed a file whose size and mtime did not change")
	}
	// A new mtime is rehashed.
	if err := os.Chtimes(p, info.ModTime().Add(time.Second), info.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.e.localSHA256(p); got == sha {
		t.Errorf("a changed file kept its cached hash")
	}
}

func TestActionReconfigureRewritesOnlyChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)
	conf, env := want.Files[0].Path, want.Files[1].Path
	before := snapshot(t, f.n)
	f.n.ResetCalls(t)
	f.logs.TakeAll()

	// Only the env file changes.
	files := slices.Clone(want.Files)
	files[1].Content = []byte("SECRET=rotated\n")
	want2 := f.withFiles(&plan.DesiredComponent{Name: "app", Version: "1.0.0", ArtifactPath: want.ArtifactPath, ArtifactSHA256: want.ArtifactSHA256,
		Unit: want.Unit, Health: want.Health}, files)
	f.mustDo(t, plan.ActionReconfigure, want2)

	after := snapshot(t, f.n)
	rel := func(p string) string { r, _ := filepath.Rel(f.n.Dir, p); return r }
	if before[rel(conf)] != after[rel(conf)] {
		t.Errorf("unchanged %s was rewritten", conf)
	}
	if before[rel(env)].Ino == after[rel(env)].Ino || readFile(t, env) != "SECRET=rotated\n" || modeOf(t, env) != 0o600 {
		t.Errorf("changed %s not rewritten by rename with its mode", env)
	}
	calls := f.n.SystemctlCalls(t)
	if count(calls, "daemon-reload") != 0 || count(calls, "restart") != 1 {
		t.Errorf("systemctl calls %q: want one restart and no daemon-reload", calls)
	}
	if slices.Contains(f.n.Runner.Steps(), "unpack") {
		t.Errorf("reconfigure unpacked")
	}
	if r := f.receipt(t); r.ConfigHash != want2.ConfigHash || r.Version != "1.0.0" {
		t.Errorf("receipt %+v: want config hash %s", r, want2.ConfigHash)
	}

	// A new unit is written and reloaded once; a dropped file is deleted.
	f.n.ResetCalls(t)
	want3 := f.withFiles(&plan.DesiredComponent{Name: "app", Version: "1.0.0", ArtifactPath: want.ArtifactPath, ArtifactSHA256: want.ArtifactSHA256,
		Unit: append(slices.Clone(want.Unit), "Environment=A=1\n"...), Health: want.Health}, files[:1])
	f.mustDo(t, plan.ActionReconfigure, want3)
	if calls := f.n.SystemctlCalls(t); count(calls, "daemon-reload") != 1 {
		t.Errorf("systemctl calls %q: want exactly one daemon-reload", calls)
	}
	if readFile(t, filepath.Join(f.n.UnitDir, "drover-app.service")) != string(want3.Unit) {
		t.Errorf("unit not rewritten")
	}
	if _, err := os.Stat(env); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file dropped from the manifest is still there: %v", err)
	}
	if r := f.receipt(t); r.UnitHash != want3.UnitHash || !slices.Equal(r.Files, []string{conf}) {
		t.Errorf("receipt %+v", r)
	}
}

func TestActionUpgradeKeepsPreviousAndPrunes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	v2 := f.component(t, "2.0.0", false)
	f.mustDo(t, plan.ActionUpgrade, v2)
	if r := f.receipt(t); r.Version != "2.0.0" || r.Previous != "1.0.0" {
		t.Fatalf("receipt after first upgrade %+v", r)
	}
	v3 := f.component(t, "3.0.0", false)
	f.mustDo(t, plan.ActionUpgrade, v3)

	if r := f.receipt(t); r.Version != "3.0.0" || r.Previous != "2.0.0" || r.ArtifactSHA256 != v3.ArtifactSHA256 {
		t.Errorf("receipt %+v", r)
	}
	if l, _ := os.Readlink(filepath.Join(f.n.Root, "active/app")); l != "../packages/app/3.0.0" {
		t.Errorf("active -> %s", l)
	}
	entries, _ := os.ReadDir(filepath.Join(f.n.Root, "packages/app"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"2.0.0", "3.0.0"}) {
		t.Errorf("package dirs %q, want the previous and the active one", names)
	}
	cache, _ := os.ReadDir(filepath.Join(f.n.Root, "cache"))
	names = nil
	for _, e := range cache {
		names = append(names, e.Name())
	}
	wantCache := []string{v2.ArtifactSHA256 + ".tar.gz", v3.ArtifactSHA256 + ".tar.gz"}
	slices.Sort(wantCache)
	if !slices.Equal(names, wantCache) {
		t.Errorf("cache %q, want %q", names, wantCache)
	}
	if got := readFile(t, filepath.Join(f.n.Root, "active/app/conf/app.conf")); got != "version=3.0.0\n" {
		t.Errorf("active config %q", got)
	}
}

func TestActionRollbackAfterFailedUpgrade(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	haveBefore := f.n.Observe(t, "app")

	bad := f.component(t, "2.0.0", true)
	up := plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"}
	err := f.e.Do(context.Background(), f.n.DesiredNode(), up, bad, haveBefore)
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("upgrade to a broken version: %v, want ErrUnhealthy", err)
	}
	if !strings.Contains(err.Error(), "drover-app.service is failed") {
		t.Errorf("error %q does not say what the probe saw", err)
	}
	if r := f.receipt(t); r.Version != "1.0.0" {
		t.Errorf("a failed upgrade wrote its receipt: %+v", r)
	}

	// As the controller does: roll back with the probe from before.
	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, From: "2.0.0", To: "1.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, bad, haveBefore); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(f.n.Root, "active/app")); l != "../packages/app/1.0.0" {
		t.Errorf("active -> %s after rollback", l)
	}
	if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
		t.Errorf("unit %s after rollback", s)
	}
	r := f.receipt(t)
	if r.Version != "1.0.0" || r.ArtifactSHA256 != v1.ArtifactSHA256 || !r.Time.Equal(f.e.Now()) {
		t.Errorf("receipt after rollback %+v", r)
	}
	if !slices.Contains(r.Files, v1.Files[1].Path) {
		t.Errorf("receipt forgot a file it must remove later: %q", r.Files)
	}
}

// TestActionRollbackRestoresFilesOutside: an upgrade rewrites files
// outside the version dir in place; the rollback puts back the old
// version's, so the old version does not restart on the new config.
func TestActionRollbackRestoresFilesOutside(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	flags, dropped, added := f.n.Outside+"/flags/app.flags", f.n.Outside+"/v1-only.conf", f.n.Outside+"/v2-only.conf"
	v1 := f.component(t, "1.0.0", false,
		manifests.RenderedFile{Path: flags, Mode: 0o644, Content: []byte("--mode=v1\n")},
		manifests.RenderedFile{Path: dropped, Mode: 0o600, Content: []byte("old\n")})
	f.mustDo(t, plan.ActionInstall, v1)
	haveBefore := f.n.Observe(t, "app")

	bad := f.component(t, "2.0.0", true,
		manifests.RenderedFile{Path: flags, Mode: 0o640, Content: []byte("--mode=v2\n")},
		manifests.RenderedFile{Path: added, Mode: 0o644, Content: []byte("new\n")})
	up := plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), up, bad, haveBefore); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("upgrade to a broken version: %v, want ErrUnhealthy", err)
	}
	if got := readFile(t, flags); got != "--mode=v2\n" {
		t.Fatalf("the upgrade did not write the new flags: %q", got)
	}
	if _, err := os.Stat(dropped); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the upgrade kept a file the new manifest dropped: %v", err)
	}

	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, From: "2.0.0", To: "1.0.0"}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, bad, haveBefore); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	for p, want := range map[string]struct {
		content string
		mode    os.FileMode
	}{flags: {"--mode=v1\n", 0o644}, dropped: {"old\n", 0o600}, added: {"new\n", 0o644}, v1.Files[1].Path: {"SECRET=s3cr3t\n", 0o600}} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s after rollback: %v", p, err)
			continue
		}
		if got := readFile(t, p); got != want.content || fi.Mode().Perm() != want.mode {
			t.Errorf("%s after rollback: %q mode %o, want %q mode %o", p, got, fi.Mode().Perm(), want.content, want.mode)
		}
	}
	if !slices.Contains(f.changedSteps(), "restore files") {
		t.Errorf("changed steps %q: no restore files", f.changedSteps())
	}
	// v1's files are v1's again: going back to the v1 manifest rewrites
	// none of them (a rewrite is a rename: a new inode), and deletes the
	// file v2 added.
	inodes := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, rf := range v1.Files {
			if fi, err := os.Stat(rf.Path); err == nil {
				m[rf.Path] = fi.Sys().(*syscall.Stat_t).Ino
			}
		}
		return m
	}
	before := inodes()
	f.mustDo(t, plan.ActionReconfigure, v1)
	if after := inodes(); !maps.Equal(before, after) || len(after) != len(v1.Files) {
		t.Errorf("reconfigure to v1 after the rollback rewrote files: inodes %v, then %v", before, after)
	}
	if _, err := os.Stat(added); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file only v2 had is still there: %v", err)
	}
}

// TestActionUnpackDropsKeptCopiesFromArtifact: what a rollback restores
// is what drover wrote, never what an artifact brought along.
func TestActionUnpackDropsKeptCopiesFromArtifact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	evil := f.n.Outside + "/planted"
	want.ArtifactPath = filepath.Join(f.arts, "planted.tar.gz")
	want.ArtifactSHA256 = localnode.WriteTarGz(t, want.ArtifactPath,
		localnode.TarEntry{Name: "bin/app", Mode: 0o755, Content: "#!/bin/sh\necho app\n"},
		localnode.TarEntry{Name: keptFilesDir + evil, Mode: 0o644, Content: "planted\n"},
		localnode.TarEntry{Name: keptUnitName, Mode: 0o644, Content: "[Service]\nExecStart=/bin/planted\n"})
	want.Unit = nil // no unit of its own to keep: the artifact's would stay
	f.mustDo(t, plan.ActionInstall, want)
	vdir := manifests.VersionDir(f.n.Root, "app", "1.0.0")
	for _, p := range []string{keptPath(vdir, evil), filepath.Join(vdir, keptUnitName)} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s from the artifact is in the version dir: %v", p, err)
		}
	}
	if got := readFile(t, keptPath(vdir, want.Files[1].Path)); got != string(want.Files[1].Content) {
		t.Errorf("drover's own kept copy of %s: %q", want.Files[1].Path, got)
	}
}

func TestActionRollbackToPreviousFromReceipt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	v2 := f.component(t, "2.0.0", false)
	f.mustDo(t, plan.ActionUpgrade, v2)

	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, v2, f.n.Observe(t, "app")); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(f.n.Root, "active/app")); l != "../packages/app/1.0.0" {
		t.Errorf("active -> %s", l)
	}
	if r := f.receipt(t); r.Version != "1.0.0" || r.Previous != "" {
		t.Errorf("receipt %+v", r)
	}
	// Nothing left to roll back to.
	err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, v2, f.n.Observe(t, "app"))
	if err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Errorf("second rollback: %v", err)
	}
}

func TestActionRollbackRefusesIncompleteVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, To: "0.9.0"}
	err := f.e.Do(context.Background(), f.n.DesiredNode(), rb, nil, f.n.Observe(t, "app"))
	if !errors.Is(err, ErrNodeMissing) || !strings.Contains(err.Error(), "switch active") {
		t.Errorf("rollback to a version not on the node: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(f.n.Root, "active/app")); l != "../packages/app/1.0.0" {
		t.Errorf("active moved to %s", l)
	}
}

func TestActionRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)
	receipt := readFile(t, filepath.Join(f.n.Root, "receipts/app.json"))
	if err := os.WriteFile(filepath.Join(f.n.State, "active", "drover-app.service"), []byte("failed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.n.ResetCalls(t)
	f.mustDo(t, plan.ActionRestart, want)
	if s := f.n.UnitActiveState("drover-app.service"); s != "active" {
		t.Errorf("unit %s after restart", s)
	}
	if got := f.n.Runner.Steps(); !slices.Equal(got, []string{"restart unit"}) {
		t.Errorf("steps %q", got)
	}
	if readFile(t, filepath.Join(f.n.Root, "receipts/app.json")) != receipt {
		t.Errorf("restart changed the receipt")
	}
}

func TestActionRemoveLeavesSkeleton(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	v2 := f.component(t, "2.0.0", false)
	f.mustDo(t, plan.ActionUpgrade, v2)
	v1sha, v2sha := v1.ArtifactSHA256, v2.ArtifactSHA256
	// Another component shares the node; its things must stay.
	other := f.withFiles(&plan.DesiredComponent{Name: "other", Version: "1"},
		[]manifests.RenderedFile{{Path: f.n.Outside + "/other.conf", Mode: 0o644, Content: []byte("o")}})
	p, sha := f.artifact(t, "other", false)
	other.ArtifactPath, other.ArtifactSHA256 = p, sha
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), plan.Action{Component: "other", Kind: plan.ActionInstall}, other, nil); err != nil {
		t.Fatal(err)
	}
	otherBefore := snapshot(t, f.n)
	f.n.ResetCalls(t)

	f.mustDo(t, plan.ActionRemove, nil)

	got := snapshot(t, f.n)
	for k, v := range otherBefore {
		if strings.Contains(k, "other") || strings.Contains(k, sha) {
			if got[k] != v {
				t.Errorf("remove of app touched %s", k)
			}
		}
	}
	for k := range got {
		for _, gone := range []string{"packages/app", "active/app", "receipts/app.json", "drover-app.service", "app.env", v1sha, v2sha} {
			if strings.Contains(k, gone) {
				t.Errorf("left behind: %s", k)
			}
		}
	}
	calls := f.n.SystemctlCalls(t)
	for _, c := range []string{"stop drover-app.service", "disable --quiet drover-app.service", "daemon-reload"} {
		if !slices.Contains(calls, c) {
			t.Errorf("systemctl calls %q lack %q", calls, c)
		}
	}
	// Removing only app from a node with just app leaves the skeleton.
	f.mustDo(t, plan.ActionRemove, nil) // again: nothing to do
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), plan.Action{Component: "other", Kind: plan.ActionRemove}, nil, f.n.Observe(t, "other")); err != nil {
		t.Fatal(err)
	}
	left := slices.Sorted(maps.Keys(snapshot(t, f.n)))
	skeleton := []string{"etc/systemd/system", "opt/drover", "opt/drover/" + manifests.RootMarker, "opt/drover/active", "opt/drover/cache", "opt/drover/lock",
		"opt/drover/packages", "opt/drover/receipts"}
	if !slices.Equal(left, skeleton) {
		t.Errorf("after removing everything: %q\nwant %q", left, skeleton)
	}
}

func TestActionRemoveTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	f.mustDo(t, plan.ActionRemove, nil)
	f.logs.TakeAll()
	f.n.ResetCalls(t)
	f.mustDo(t, plan.ActionRemove, nil)
	if got := f.changedSteps(); len(got) != 0 {
		t.Errorf("second remove changed %q", got)
	}
	if calls := f.n.SystemctlCalls(t); count(calls, "stop")+count(calls, "disable")+count(calls, "daemon-reload") != 0 {
		t.Errorf("second remove called %q", calls)
	}
}

func TestActionQuotingSurvives(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	nasty := "we ird 'q' \"dq\" $(touch pwned) `touch pwned2` ;rm -rf x\nline2 \\ %s"
	dir := filepath.Join(f.n.Dir, "art $(touch pwned3) 'x'")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.arts = dir
	data := nasty + "\x00binary\xff no newline at end"
	want := f.component(t, "1.0.0", false,
		manifests.RenderedFile{Path: f.n.Outside + "/" + nasty + ".conf", Mode: 0o644, Content: []byte(data)},
		manifests.RenderedFile{Path: manifests.VersionDir(f.n.Root, "app", "1.0.0") + "/" + nasty, Mode: 0o600, Content: []byte(data)},
		manifests.RenderedFile{Path: f.n.Outside + "/empty", Mode: 0o644, Content: nil},
	)
	f.mustDo(t, plan.ActionInstall, want)
	for _, rf := range want.Files {
		if got := readFile(t, rf.Path); got != string(rf.Content) {
			t.Errorf("%q = %q, want %q", rf.Path, got, rf.Content)
		}
		if m := modeOf(t, rf.Path); m != rf.Mode {
			t.Errorf("%q mode %o", rf.Path, m)
		}
	}
	err := filepath.WalkDir(f.n.Dir, func(p string, d fs.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), "pwned") {
			t.Errorf("a value ran as a command: %s exists", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// And a second run finds them all in place.
	f.logs.TakeAll()
	f.mustDo(t, plan.ActionReconfigure, want)
	if got := f.changedSteps(); slices.Contains(got, "write files") {
		t.Errorf("second run rewrote files: %q", got)
	}
}

func TestActionFilesOnlyComponent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.withFiles(&plan.DesiredComponent{Name: "app", Version: "1"},
		[]manifests.RenderedFile{{Path: f.n.Outside + "/motd", Mode: 0o644, Content: []byte("hi\n")}})
	f.mustDo(t, plan.ActionInstall, want)
	if calls := f.n.SystemctlCalls(t); len(calls) != 0 {
		t.Errorf("files-only install called systemctl: %q", calls)
	}
	if got := readFile(t, filepath.Join(f.n.Root, "packages/app/1/.complete")); got != "none\n" {
		t.Errorf(".complete = %q", got)
	}
	if f.receipt(t).Version != "1" || readFile(t, f.n.Outside+"/motd") != "hi\n" {
		t.Errorf("not installed")
	}
	f.mustDo(t, plan.ActionRemove, nil)
	if _, err := os.Stat(f.n.Outside + "/motd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("remove left the file: %v", err)
	}
}

// TestActionInstallCacheFull: when df says the node's cache has less
// room than the artifact, the upload stops before sending it and says
// so, with both figures; a full disk does not read as a checksum
// mismatch of a truncated file.
func TestActionInstallCacheFull(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	df := "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\necho 'full 1024 1024 0 100% /cache'\n"
	if err := os.WriteFile(filepath.Join(f.n.Dir, "bin", "df"), []byte(df), 0o755); err != nil {
		t.Fatal(err)
	}
	want := f.component(t, "1.0.0", false)
	err := f.do(t, plan.ActionInstall, want)
	if err == nil || errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want the upload refused for want of space", err)
	}
	for _, s := range []string{"step upload artifact", "no space left on device", f.n.Root + "/cache: 0 KiB free, artifact "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v; does not say %q", err, s)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(f.n.Root, "cache", "*")); len(left) != 0 {
		t.Errorf("the cache holds %v after a refused upload", left)
	}
}

// localExecutor returns an executor for the node that polls health fast and
// probes with n.Probe.
func localExecutor(n *localnode.LocalNode, log *zap.Logger) *Executor {
	return New(Config{
		Runner:        n.Runner,
		InstallRoot:   n.Root,
		UnitDir:       n.UnitDir,
		Generation:    "gen-1",
		Log:           log,
		HealthPoll:    20 * time.Millisecond,
		HealthTimeout: 2 * time.Second,
		LockWait:      2 * time.Second,
		Probe:         n.Probe,
	})
}
