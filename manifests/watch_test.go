package manifests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// watchDebounce is short so tests run fast, but long enough that the
// writes of one editor save fall inside it.
const watchDebounce = 150 * time.Millisecond

// watching runs w until the test ends and returns what it sends. The
// cleanup stops it, waits for Run to return and checks that no goroutine
// is left behind.
func watching(t *testing.T, w *Watcher) <-chan Change {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	if w.Debounce == 0 {
		w.Debounce = watchDebounce
	}
	if w.Resync == 0 {
		w.Resync = time.Hour // events alone, unless a test wants the safety net
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Change)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		goleak.VerifyNone(t, leaks)
	})
	return out
}

// next waits for one Change.
func next(t *testing.T, ch <-chan Change, within time.Duration) Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(within):
		t.Fatalf("no change within %s", within)
		return Change{}
	}
}

// wantData waits for a Change carrying exactly want.
func wantData(t *testing.T, ch <-chan Change, want string) {
	t.Helper()
	c := next(t, ch, 5*time.Second)
	if c.Err != nil || string(c.Data) != want {
		t.Fatalf("got change %q (err %v), want %q", c.Data, c.Err, want)
	}
}

// quiet checks that nothing is sent for d.
func quiet(t *testing.T, ch <-chan Change, d time.Duration) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("unexpected change %q (err %v)", c.Data, c.Err)
	case <-time.After(d):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// manifestFile is a fresh cluster.yaml holding content.
func manifestFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	write(t, p, content)
	return p
}

func TestWatcherSendsInitialContent(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	quiet(t, ch, 3*watchDebounce)
}

func TestWatcherRewriteInPlace(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	// O_TRUNC then write: a reader in between sees an empty file, which
	// the debounce must hide.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(watchDebounce / 3)
	if _, err := f.WriteString("v2\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantData(t, ch, "v2\n")
	quiet(t, ch, 3*watchDebounce)
}

// TestWatcherRenameOver saves as sed -i does: a temp file in the same
// directory renamed over the manifest, which replaces its inode.
func TestWatcherRenameOver(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	tmp := filepath.Join(filepath.Dir(p), "sedAbC123")
	write(t, tmp, "v2\n")
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	wantData(t, ch, "v2\n")
	// The watch follows the new inode: a second save is seen too.
	write(t, tmp, "v3\n")
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	wantData(t, ch, "v3\n")
}

// TestWatcherVimSave saves as vim does with backupcopy=no: the original
// is renamed to a backup, a new file written under the name, the backup
// deleted. The moment with no file at all must not be sent.
func TestWatcherVimSave(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	for i, v := range []string{"v2\n", "v3\n"} {
		backup := p + "~"
		if err := os.Rename(p, backup); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(filepath.Dir(p), ".cluster.yaml.swp"), fmt.Sprint(i))
		write(t, p, v)
		if err := os.Remove(backup); err != nil {
			t.Fatal(err)
		}
		wantData(t, ch, v)
	}
	quiet(t, ch, 3*watchDebounce)
}

// configMap lays out dir as Kubernetes mounts a ConfigMap: the file is a
// link through `..data`, itself a link to a timestamped directory.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMap(t *testing.T, content string) *configMap {
	cm := &configMap{t: t, dir: t.TempDir()}
	cm.publish(content)
	if err := os.Symlink("..data/cluster.yaml", filepath.Join(cm.dir, "cluster.yaml")); err != nil {
		t.Fatal(err)
	}
	return cm
}

// publish does what kubelet's atomic writer does: write a new timestamped
// directory, point `..data_tmp` at it, rename that over `..data`, and
// remove the old directory.
func (cm *configMap) publish(content string) {
	t := cm.t
	cm.n++
	ts := fmt.Sprintf("..2024_01_02_03_04_%02d.%d", cm.n, 1000+cm.n)
	if err := os.Mkdir(filepath.Join(cm.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(cm.dir, ts, "cluster.yaml"), content)
	old, _ := os.Readlink(filepath.Join(cm.dir, "..data"))
	tmp := filepath.Join(cm.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cm.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(cm.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatcherConfigMapSymlinkSwap(t *testing.T) {
	cm := newConfigMap(t, "v1\n")
	ch := watching(t, &Watcher{Path: filepath.Join(cm.dir, "cluster.yaml")})
	wantData(t, ch, "v1\n")
	cm.publish("v2\n")
	wantData(t, ch, "v2\n")
	cm.publish("v3\n")
	wantData(t, ch, "v3\n")
	quiet(t, ch, 3*watchDebounce)
}

// TestWatcherSymlinkToOtherDir: the manifest is a link into another
// directory (a git checkout, say); editing the target there is seen at
// once, not only at the next resync.
func TestWatcherSymlinkToOtherDir(t *testing.T) {
	target := manifestFile(t, "v1\n")
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	write(t, target, "v2\n")
	wantData(t, ch, "v2\n")
	// Repointing the link at another file is seen too, and the new
	// target's edits after it.
	other := manifestFile(t, "v3\n")
	tmp := p + ".tmp"
	if err := os.Symlink(other, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	wantData(t, ch, "v3\n")
	write(t, other, "v4\n")
	wantData(t, ch, "v4\n")
	write(t, target, "ignored: no longer the target\n")
	quiet(t, ch, 3*watchDebounce)
}

func TestWatcherDeleteThenRecreate(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")

	// Deleted and back within the debounce: only the new content.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	write(t, p, "v2\n")
	wantData(t, ch, "v2\n")

	// Deleted for longer: an error the consumer must not act on, then
	// the new content once it is back.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	c := next(t, ch, 5*time.Second)
	if !errors.Is(c.Err, os.ErrNotExist) || c.Data != nil {
		t.Fatalf("after delete: got %q, err %v; want a not-exist error", c.Data, c.Err)
	}
	quiet(t, ch, 3*watchDebounce) // still deleted: said once
	write(t, p, "v3\n")
	wantData(t, ch, "v3\n")
}

func TestWatcherEmptyFileIsAnError(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	write(t, p, "  \n\n")
	c := next(t, ch, 5*time.Second)
	if c.Err == nil || !strings.Contains(c.Err.Error(), "empty") {
		t.Fatalf("emptied manifest: got %q, err %v; want an 'empty' error", c.Data, c.Err)
	}
	write(t, p, "v2\n")
	wantData(t, ch, "v2\n")
}

// TestWatcherDebouncesBurst writes many versions in quick succession:
// one read, of the last.
func TestWatcherDebouncesBurst(t *testing.T) {
	p := manifestFile(t, "v0\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v0\n")
	for i := 1; i <= 20; i++ {
		write(t, p, fmt.Sprintf("v%d\n", i))
		time.Sleep(watchDebounce / 30)
	}
	wantData(t, ch, "v20\n")
	quiet(t, ch, 3*watchDebounce)
}

// TestWatcherEndlessBurstStillReads: events that never pause for a whole
// debounce do not postpone the read for ever.
func TestWatcherEndlessBurstStillReads(t *testing.T) {
	p := manifestFile(t, "v0\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v0\n")
	write(t, p, "v1\n")
	stop := time.After(3 * burstFactor * watchDebounce)
	tick := time.NewTicker(watchDebounce / 3)
	defer tick.Stop()
	for {
		select {
		case c := <-ch:
			if c.Err != nil || string(c.Data) != "v1\n" {
				t.Fatalf("got %q (err %v), want v1", c.Data, c.Err)
			}
			return
		case <-tick.C:
			now := time.Now()
			if err := os.Chtimes(p, now, now); err != nil {
				t.Fatal(err)
			}
		case <-stop:
			t.Fatalf("no read within %s of continuous events", 3*burstFactor*watchDebounce)
		}
	}
}

// TestWatcherUnchangedContentIsNotSent: touch, chmod and rewriting the
// same bytes (an editor's :w with no change) send nothing.
func TestWatcherUnchangedContentIsNotSent(t *testing.T) {
	p := manifestFile(t, "v1\n")
	ch := watching(t, &Watcher{Path: p})
	wantData(t, ch, "v1\n")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, p, "v1\n")
	tmp := p + ".new"
	write(t, tmp, "v1\n")
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(filepath.Dir(p), "other.yaml"), "x")
	quiet(t, ch, 4*watchDebounce)
	// And it still works afterwards.
	write(t, p, "v2\n")
	wantData(t, ch, "v2\n")
}

// TestWatcherResyncWithoutEvents: with inotify off, as on a filesystem
// without it, a change is only seen by the periodic re-read. The control
// (a long Resync) proves no event got through.
func TestWatcherResyncWithoutEvents(t *testing.T) {
	t.Run("control", func(t *testing.T) {
		p := manifestFile(t, "v1\n")
		ch := watching(t, &Watcher{Path: p, pollOnly: true, Resync: time.Hour})
		wantData(t, ch, "v1\n")
		write(t, p, "v2\n")
		quiet(t, ch, 6*watchDebounce)
	})
	t.Run("resync", func(t *testing.T) {
		const resync = 400 * time.Millisecond
		p := manifestFile(t, "v1\n")
		ch := watching(t, &Watcher{Path: p, pollOnly: true, Resync: resync})
		wantData(t, ch, "v1\n")
		write(t, p, "v2\n")
		start := time.Now()
		wantData(t, ch, "v2\n")
		if waited := time.Since(start); waited > 3*resync {
			t.Errorf("resync took %s, Resync is %s", waited, resync)
		}
		// A resync that reads the same bytes sends nothing.
		quiet(t, ch, 3*resync)
	})
}

// TestWatcherDirectoryRecreated: the directory itself is removed and made
// again (a deploy that replaces /etc/drover); the watch is lost with it and
// the resync finds the new file and watches the new directory.
func TestWatcherDirectoryRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cluster.yaml")
	write(t, p, "v1\n")
	const resync = 1500 * time.Millisecond
	ch := watching(t, &Watcher{Path: p, Resync: resync})
	wantData(t, ch, "v1\n")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if c := next(t, ch, 5*time.Second); !errors.Is(c.Err, os.ErrNotExist) {
		t.Fatalf("after removing the directory: got %q, err %v; want not-exist", c.Data, c.Err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p, "v2\n")
	wantData(t, ch, "v2\n")
	// The resync watched the new directory: the next edit is an event.
	start := time.Now()
	write(t, p, "v3\n")
	wantData(t, ch, "v3\n")
	if waited := time.Since(start); waited > resync/2 {
		t.Errorf("edit in the recreated directory seen after %s: not watched again", waited)
	}
}

// TestWatcherStartsWithoutFile: a missing manifest at start is reported,
// and its creation later is seen.
func TestWatcherStartsWithoutFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	ch := watching(t, &Watcher{Path: p})
	if c := next(t, ch, 5*time.Second); !errors.Is(c.Err, os.ErrNotExist) {
		t.Fatalf("got %q, err %v; want not-exist", c.Data, c.Err)
	}
	write(t, p, "v1\n")
	wantData(t, ch, "v1\n")
}
