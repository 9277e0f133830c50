package execute

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

func TestExecutorDispatchTableCoversEveryKind(t *testing.T) {
	t.Parallel()
	table := actionTable()
	kinds := []plan.ActionKind{plan.ActionInstall, plan.ActionUpgrade, plan.ActionReconfigure, plan.ActionRestart, plan.ActionRemove, plan.ActionRollback}
	for _, k := range kinds {
		if table[k] == nil {
			t.Errorf("no function for %s", k)
		}
	}
	if len(table) != len(kinds) {
		t.Errorf("table has %d kinds, want %d", len(table), len(kinds))
	}
	f := newFixture(t)
	err := f.e.Do(context.Background(), f.n.DesiredNode(), plan.Action{Component: "app", Kind: "explode"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestExecutorDryRunRunsNothing walks a whole install in dry-run mode: the
// same code path as a real one, every step logged as "would: <step>", and
// not one script run.
func TestExecutorDryRunRunsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		t.Errorf("dry run ran %q", label)
		return "exit 1", errors.New("dry run must not run")
	}
	f.e.DryRun = true
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	var got []string
	for _, e := range f.logs.All() {
		if name, ok := strings.CutPrefix(e.Message, "would: "); ok {
			got = append(got, name)
		}
	}
	want := []string{"ensure dirs", "upload artifact", "unpack", "write files", "write unit", "keep unit", "switch active", "restart unit", "wait for health", "prune", "write receipt"}
	if !slices.Equal(got, want) {
		t.Errorf("dry run would do %q\nwant %q", got, want)
	}
	if _, err := os.Stat(f.n.Root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run created the install root")
	}
	// A dry run still refuses a bad artifact: that check is local.
	bad := f.component(t, "2.0.0", false)
	bad.ArtifactSHA256 = strings.Repeat("0", 64)
	if err := f.do(t, plan.ActionUpgrade, bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("dry run with a bad artifact: %v", err)
	}
}

func TestExecutorRejectsUnsafeValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := func() *plan.DesiredComponent { return f.component(t, "1.0.0", false) }
	cases := map[string]func() (*Executor, plan.Action, *plan.DesiredComponent){
		"component ..": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			return f.e, plan.Action{Component: "..", Kind: plan.ActionRemove}, nil
		},
		"component with slash": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			return f.e, plan.Action{Component: "a/b", Kind: plan.ActionRemove}, nil
		},
		"version escaping": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			c := good()
			c.Version = "../../etc"
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, c
		},
		"version the manifest refuses": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			c := good()
			c.Version = "1.0~rc1" // manifests.IsVersion: one rule for the manifest and the executor
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, c
		},
		"relative file": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			c := good()
			c.Files = append(c.Files, manifests.RenderedFile{Path: "conf/x"})
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, c
		},
		"unclean file": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			c := good()
			c.Files = append(c.Files, manifests.RenderedFile{Path: "/etc/../root/x"})
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, c
		},
		"sha not hex": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			c := good()
			c.ArtifactSHA256 = "$(reboot)"
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, c
		},
		"root /": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			e := localExecutor(f.n, nil)
			e.InstallRoot = "/"
			return e, plan.Action{Component: "app", Kind: plan.ActionRemove}, nil
		},
		"install without want": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			return f.e, plan.Action{Component: "app", Kind: plan.ActionInstall}, nil
		},
		"want for another component": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			return f.e, plan.Action{Component: "other", Kind: plan.ActionInstall}, good()
		},
		"rollback to odd version": func() (*Executor, plan.Action, *plan.DesiredComponent) {
			return f.e, plan.Action{Component: "app", Kind: plan.ActionRollback, To: "../x"}, nil
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			f.n.Runner.Reset()
			e, a, want := mk()
			if err := e.Do(context.Background(), f.n.DesiredNode(), a, want, nil); err == nil {
				t.Errorf("accepted")
			}
			if l := f.n.Runner.Labels(); len(l) != 0 {
				t.Errorf("ran %q", l)
			}
		})
	}
}

// TestStepWaitsForNodeLock holds <root>/lock as another action would: the
// step gives up after LockWait with ErrLocked, and goes ahead once the
// lock is free.
func TestStepWaitsForNodeLock(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.LockWait = time.Second
	if err := os.MkdirAll(f.n.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(f.n.Root, "lock"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	want := f.component(t, "1.0.0", false)
	start := time.Now()
	err = f.do(t, plan.ActionInstall, want)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "step ensure dirs") {
		t.Fatalf("install under a held lock: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("gave up after %s, before LockWait", d)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	f.mustDo(t, plan.ActionInstall, want)
}

// TestStepsTakeTheLock checks that every mutating script holds the lock.
func TestStepsTakeTheLock(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var unlocked []string
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		if strings.HasPrefix(label, "step: ") && !strings.Contains(script, "flock -w 2 9 ||") {
			unlocked = append(unlocked, label)
		}
		return script, nil
	}
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)
	f.mustDo(t, plan.ActionReconfigure, want)
	f.mustDo(t, plan.ActionRestart, want)
	f.mustDo(t, plan.ActionUpgrade, f.component(t, "2.0.0", false))
	f.mustDo(t, plan.ActionRollback, nil)
	f.mustDo(t, plan.ActionRemove, nil)
	if len(unlocked) > 0 {
		t.Errorf("steps without the lock: %q", unlocked)
	}
	if len(f.n.Runner.Steps()) < 20 {
		t.Errorf("only %d steps seen", len(f.n.Runner.Steps()))
	}
}

// TestExecutorWaitHealthyTimesOut: a unit that never comes up fails the
// gate with ErrUnhealthy after HealthTimeout, with the probe's last word;
// a unit systemd gave up on (failed) fails it at once.
func TestExecutorWaitHealthyTimesOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	want := f.component(t, "1.0.0", true)
	err := f.do(t, plan.ActionInstall, want)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "unit drover-app.service is failed") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.n.Root, "receipts/app.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unhealthy install wrote a receipt")
	}
	// "At once" against a timeout of a minute: the gate does not wait
	// for a unit systemd gave up on (and no loaded machine takes that long).
	j := &job{node: f.n.DesiredNode(), name: "app", want: want, log: f.e.logger()}
	f.e.HealthTimeout = time.Minute
	start := time.Now()
	err = f.e.waitHealthy(context.Background(), j, true, true)
	if d := time.Since(start); !errors.Is(err, ErrUnhealthy) || d > 30*time.Second {
		t.Errorf("wait on a failed unit: %v after %s, want ErrUnhealthy at once", err, d)
	}
	f.e.HealthTimeout = 300 * time.Millisecond

	// Stuck activating: the whole timeout, then the last probe's word.
	if err := os.WriteFile(filepath.Join(f.n.State, "active", "drover-app.service"), []byte("activating\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	err = f.e.waitHealthy(context.Background(), j, true, true)
	if d := time.Since(start); !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "is activating") || d < 300*time.Millisecond {
		t.Errorf("wait on an activating unit: %v after %s, want ErrUnhealthy after 300ms", err, d)
	}

	// A cancelled context is not a failed health gate.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.e.waitHealthy(ctx, j, true, true); errors.Is(err, ErrUnhealthy) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

func serveBytes(t *testing.T, b []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/app.tar.gz"
}

func TestActionInstallFromURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	data, err := os.ReadFile(want.ArtifactPath)
	if err != nil {
		t.Fatal(err)
	}
	want.ArtifactURL, want.ArtifactPath = serveBytes(t, data), ""
	f.mustDo(t, plan.ActionInstall, want)
	if got := f.n.Runner.Steps(); !slices.Contains(got, "download artifact") {
		t.Errorf("steps %q", got)
	}
	if readFile(t, filepath.Join(f.n.Root, "active/app/share/readme")) != "app 1.0.0\n" {
		t.Errorf("not unpacked")
	}
}

// TestActionInstallChecksumMismatchOnNode: the node verifies what it got;
// a mismatch leaves no cache file, no partial, and nothing installed.
func TestActionInstallChecksumMismatchOnNode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	want.ArtifactURL, want.ArtifactPath = serveBytes(t, []byte("not the artifact")), ""
	err := f.do(t, plan.ActionInstall, want)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "checksum mismatch: expected "+want.ArtifactSHA256+", got ") ||
		!strings.Contains(err.Error(), want.ArtifactURL) || !strings.Contains(err.Error(), "step download artifact") {
		t.Fatalf("err = %v", err)
	}
	cache, _ := os.ReadDir(filepath.Join(f.n.Root, "cache"))
	if len(cache) != 0 {
		t.Errorf("cache holds %v", cache)
	}
	for _, d := range []string{"packages", "active", "receipts"} {
		if entries, _ := os.ReadDir(filepath.Join(f.n.Root, d)); len(entries) != 0 {
			t.Errorf("%s not empty: %v", d, entries)
		}
	}
	if entries, _ := os.ReadDir(f.n.UnitDir); len(entries) != 0 {
		t.Errorf("unit dir not empty: %v", entries)
	}
	if calls := f.n.SystemctlCalls(t); len(calls) != 0 {
		t.Errorf("systemctl called: %q", calls)
	}
}

// TestStepUploadVerifiesStream: bytes that change in flight (here: the
// file changes after the local check) are refused by the node.
func TestStepUploadVerifiesStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	if err := f.e.verifyLocalArtifact(want); err != nil {
		t.Fatal(err)
	}
	j := &job{node: f.n.DesiredNode(), name: "app", want: want, log: f.e.logger(), action: plan.Action{Kind: plan.ActionInstall}}
	if err := f.e.ensureDirs(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want.ArtifactPath, []byte("swapped after the check"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := f.e.fetchArtifact(context.Background(), j)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), want.ArtifactPath) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.n.Root, "cache")); len(entries) != 0 {
		t.Errorf("cache holds %v", entries)
	}
}

// TestExecutorReportsSteps: DoSteps returns each step that ran with its
// result: changed on the first install, skipped or in place when
// repeated, and the
// failed step last when one fails.
func TestExecutorReportsSteps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	a := plan.Action{Node: "local", Component: want.Name, Kind: plan.ActionInstall, To: want.Version}
	results := func(steps []plan.StepRecord) map[string]string {
		m := map[string]string{}
		for _, s := range steps {
			m[s.Name] = s.Result
		}
		return m
	}
	steps, err := f.e.DoSteps(context.Background(), f.n.DesiredNode(), a, want, f.n.Observe(t, want.Name))
	if err != nil {
		t.Fatal(err)
	}
	if r := results(steps); r["upload artifact"] != plan.StepChanged || r["switch active"] != plan.StepChanged || r["write receipt"] != plan.StepChanged {
		t.Errorf("first install steps: %+v", steps)
	}
	steps, err = f.e.DoSteps(context.Background(), f.n.DesiredNode(), a, want, f.n.Observe(t, want.Name))
	if err != nil {
		t.Fatal(err)
	}
	// The package is complete: no upload at all, the rest found in place.
	if r := results(steps); r["upload artifact"] != "" || r["switch active"] != plan.StepInPlace || r["write files"] != plan.StepInPlace {
		t.Errorf("repeated install steps: %+v", steps)
	}

	next := f.component(t, "2.0.0", false)
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		if label == "step: unpack" {
			return "echo 'disk full' >&2; exit 3", nil
		}
		return script, nil
	}
	up := plan.Action{Node: "local", Component: next.Name, Kind: plan.ActionUpgrade, From: "1.0.0", To: next.Version}
	steps, err = f.e.DoSteps(context.Background(), f.n.DesiredNode(), up, next, f.n.Observe(t, next.Name))
	if err == nil {
		t.Fatal("upgrade with a failing unpack succeeded")
	}
	if len(steps) == 0 || steps[len(steps)-1].Name != "unpack" || steps[len(steps)-1].Result != plan.StepFailed {
		t.Errorf("steps of a failed upgrade: %+v", steps)
	}
}

// TestParseCrashLoop: a unit that exits at once under Restart=on-failure
// stays activating (auto-restart); its third exit since the action's
// restart is a crash loop, said with what systemd saw.
func TestParseCrashLoop(t *testing.T) {
	show := func(restarts, code, status, active, sub string) string {
		return "NRestarts=" + restarts + "\nExecMainCode=" + code + "\nExecMainStatus=" + status + "\nActiveState=" + active + "\nSubState=" + sub + "\n"
	}
	cases := []struct {
		name, show, want string
	}{
		{"first exit, waiting to restart", show("0", "1", "1", "activating", "auto-restart"), ""},
		{"second exit", show("1", "1", "1", "activating", "auto-restart"), ""},
		{"third exit", show("2", "1", "1", "activating", "auto-restart"), "exited 3 times in 5s: status=1"},
		{"restarted twice, running now", show("2", "1", "1", "active", "running"), ""},
		{"killed by a signal, given up", show("2", "2", "9", "failed", "failed"), "exited 3 times in 5s: signal=9"},
		{"no NRestarts (old systemd)", "ActiveState=activating\nSubState=auto-restart\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseCrashLoop(tc.show, 5200*time.Millisecond); got != tc.want {
				t.Errorf("parseCrashLoop = %q, want %q", got, tc.want)
			}
		})
	}
}
