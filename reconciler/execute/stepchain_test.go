package execute

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// countingRunner counts the scripts a runner is given.
type countingRunner struct {
	inventory.Runner
	runs int
}

func (c *countingRunner) Run(ctx context.Context, t inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	c.runs++
	return c.Runner.Run(ctx, t, script, stdin)
}

// TestStepBatch: batched steps run in one script, each with its own
// stdin cut from the session's, its own output, stderr and record; the
// first that fails ends the batch with its own error, and the steps after
// it do not run.
func TestStepBatch(t *testing.T) {
	f := newFixture(t)
	runner := &countingRunner{Runner: f.n.Runner}
	f.e.Runner = runner
	dir := f.n.Dir
	j := &job{node: f.n.DesiredNode(), name: "app", log: zap.NewNop()}
	artifact := filepath.Join(dir, "artifact.bin")
	if err := os.WriteFile(artifact, bytes.Repeat([]byte("a"), 70000), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(artifact)
	if err != nil {
		t.Fatal(err)
	}
	// Each step keeps what it read; the third reads nothing.
	keep := func(name string) string {
		return "set -eu\ncat > " + filepath.Join(dir, name) + "\necho changed\necho " + name + " says >&2\n"
	}
	ctx := context.Background()
	j.startBatch()
	steps := []struct {
		name, script string
		stdin        io.Reader
	}{
		{"one", keep("one"), bytes.NewReader([]byte("first\n"))},
		{"two", "set -eu\nhead -c 70000 > " + filepath.Join(dir, "two") + "\necho changed\n", newExactInput(file, 70000)},
		{"three", "echo in place", nil},
		{"four", keep("four"), bytes.NewReader([]byte("last"))},
	}
	for _, s := range steps {
		if _, err := f.e.step(ctx, j, s.name, s.script, s.stdin); err != nil {
			t.Fatal(err)
		}
	}
	if len(j.steps) != 0 || runner.runs != 0 {
		t.Fatalf("steps ran before the batch did: %+v", j.steps)
	}
	if err := f.e.endBatch(ctx, j); err != nil {
		t.Fatal(err)
	}
	if runner.runs != 1 {
		t.Errorf("%d scripts for one batch", runner.runs)
	}
	for name, want := range map[string]string{"one": "first\n", "two": strings.Repeat("a", 70000), "four": "last"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("step %s read %d bytes %.20q, want %d", name, len(b), b, len(want))
		}
	}
	var got []string
	for _, r := range j.steps {
		got = append(got, r.Name+":"+string(r.Result))
		if r.Duration < 0 {
			t.Errorf("step %s took %v", r.Name, r.Duration)
		}
	}
	want := []string{"one:" + string(plan.StepChanged), "two:" + string(plan.StepChanged), "three:" + string(plan.StepInPlace), "four:" + string(plan.StepChanged)}
	if !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}

	// A failing step: its own stderr, the steps after it never run.
	j.steps = nil
	j.startBatch()
	f.e.step(ctx, j, "ok", keep("ok"), bytes.NewReader([]byte("x")))
	f.e.step(ctx, j, "bad", "echo partial; echo disk full >&2; exit 3", nil)
	f.e.step(ctx, j, "after", keep("after"), bytes.NewReader([]byte("y")))
	err = f.e.endBatch(ctx, j)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "bad" || se.ExitCode != 3 || se.Stderr != "disk full" {
		t.Errorf("err = %v, want step bad's own", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "after")); err == nil {
		t.Error("the step after the failed one ran")
	}
	if len(j.steps) != 2 || j.steps[0].Result != plan.StepChanged || j.steps[1].Name != "bad" || j.steps[1].Result != plan.StepFailed {
		t.Errorf("records %+v", j.steps)
	}
}

// TestActionSessions: each action runs the steps with nothing to decide
// between them in one session; only a restart and the health gate, whose
// outcome decides what follows, stand alone.
func TestActionSessions(t *testing.T) {
	f := newFixture(t)
	f.e.HealthTimeout = 300 * time.Millisecond
	runner := &countingRunner{Runner: f.n.Runner}
	f.e.Runner = runner
	v1 := f.component(t, "1.0.0", false)
	count := func(kind plan.ActionKind, want *plan.DesiredComponent, a plan.Action) int {
		t.Helper()
		runner.runs = 0
		if a.Kind == "" {
			a = plan.Action{Node: "local", Component: "app", Kind: kind, To: want.Version}
		}
		err := f.e.Do(context.Background(), f.n.DesiredNode(), a, want, f.n.Observe(t, "app"))
		if kind == plan.ActionUpgrade {
			if !errors.Is(err, ErrUnhealthy) {
				t.Fatalf("upgrade to a broken version: %v", err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		return runner.runs
	}
	// The health gate's probes do not count here: the fixture's executor
	// probes the node's files directly.
	if n := count(plan.ActionInstall, v1, plan.Action{}); n != 4 {
		t.Errorf("install: %d sessions, want 4 (inspect, batch, restart, batch)", n)
	}
	changed := f.withFiles(f.component(t, "1.0.0", false), append(slices.Clone(v1.Files),
		manifests.RenderedFile{Path: f.n.Outside + "/extra.conf", Mode: 0o644, Content: []byte("x\n")}))
	if n := count(plan.ActionReconfigure, changed, plan.Action{}); n != 3 {
		t.Errorf("reconfigure: %d sessions, want 3 (batch, restart, receipt)", n)
	}
	bad := f.component(t, "2.0.0", true)
	count(plan.ActionUpgrade, bad, plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"})
	rb := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRollback, From: "2.0.0", To: "1.0.0"}
	if n := count(plan.ActionRollback, bad, rb); n != 3 {
		t.Errorf("rollback: %d sessions, want 3 (batch, restart, receipt)", n)
	}
	if n := count(plan.ActionRemove, nil, plan.Action{Node: "local", Component: "app", Kind: plan.ActionRemove}); n != 1 {
		t.Errorf("remove: %d sessions, want 1", n)
	}
}
