package execute

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drover-project/drover/reconciler/plan"
)

// testFence is a Fence a test closes.
type testFence struct{ closed atomic.Bool }

var errLostLead = errors.New("lease lost")

func (f *testFence) MayAct() error {
	if f.closed.Load() {
		return errLostLead
	}
	return nil
}

// The fence closes while an install's first batch runs: the batch, one
// session already under way, ends; no step after it starts (not the
// restart, not the receipt), and the action fails with ErrFenced and the
// fence's reason.
func TestExecutorFenceStopsStepsOnceClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fence := &testFence{}
	f.e.Fence = fence
	var mu sync.Mutex
	var after []string
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fence.closed.Load() {
			after = append(after, label)
		}
		if label == "step: switch active" {
			fence.closed.Store(true)
		}
		return script, nil
	}
	err := f.do(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	if !errors.Is(err, ErrFenced) || !errors.Is(err, errLostLead) {
		t.Fatalf("install under a closed fence: %v, want ErrFenced wrapping the reason", err)
	}
	if !strings.Contains(err.Error(), "restart unit") {
		t.Errorf("error %q does not name the step that did not start", err)
	}
	for _, l := range after {
		if strings.HasPrefix(l, "step") {
			t.Errorf("step ran after the fence closed: %q", l)
		}
	}
	// Nothing runs at all once it is closed.
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		if strings.HasPrefix(label, "step") {
			t.Errorf("step %q ran under a closed fence", label)
		}
		return script, nil
	}
	if err := f.do(t, plan.ActionInstall, f.component(t, "1.0.0", false)); !errors.Is(err, ErrFenced) {
		t.Fatalf("second install: %v", err)
	}
}
