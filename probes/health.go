package probes

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// checkFunc runs one kind of health check against a node. Checks run
// from the node: exec on it, tcp and http through the node's SSH
// connection (Runner.DialTCP), so "localhost" means the node.
type checkFunc func(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult

// checker is how probes runs one kind of check (manifests/health.go has
// the table of kinds: what sets one, its validation and defaults).
type checker struct {
	// inScript: the check runs inside the probe script, so the probe
	// stays one SSH session (exec); the others run from here beside it.
	inScript bool
	run      checkFunc
	// request refuses a check the probe script could not carry (nil:
	// nothing to refuse beyond what Validate does).
	request func(comp, what string, h *manifests.Health) error
}

// checkers has a checker for every manifests.HealthKinds kind (a test
// holds them together). A probe folds the in-script kinds into its
// script and runs the others beside it; CheckHealth runs any kind on its
// own.
var checkers = map[manifests.HealthKind]checker{
	manifests.HealthExec: {inScript: true, run: execCheck, request: checkExec},
	manifests.HealthHTTP: {run: httpCheck},
	manifests.HealthTCP:  {run: tcpCheck},
}

// checkerFor is the checker of h's kind. A Health of no kind, of two, or
// of one without a checker is an error, never "no check": a check that
// cannot run must not read as a passing one.
func checkerFor(h *manifests.Health) (checker, error) {
	kind, err := h.Kind()
	if err != nil {
		return checker{}, err
	}
	c, ok := checkers[kind]
	if !ok {
		return checker{}, fmt.Errorf("no checker for health check kind %q", kind)
	}
	return c, nil
}

// inScript reports whether h is a check the probe script runs.
func inScript(h *manifests.Health) bool {
	c, err := checkerFor(h)
	return h != nil && err == nil && c.inScript
}

// CheckHealth runs the check h on node t by itself, outside a probe.
func CheckHealth(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult {
	if h == nil {
		return HealthResult{Message: "no health check"}
	}
	c, err := checkerFor(h)
	if err != nil {
		return HealthResult{Checked: true, Message: "health check: " + err.Error()}
	}
	return c.run(ctx, r, t, h)
}

// checkTimeout is the check's own timeout.
func checkTimeout(h *manifests.Health) time.Duration {
	return h.Timeout.Get(5 * time.Second)
}

// timeoutSeconds is the timeout in whole seconds, rounded up, as
// busybox's timeout(1) wants it.
func timeoutSeconds(h *manifests.Health) int {
	s := int(math.Ceil(checkTimeout(h).Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// checkHost is the host a tcp or http check dials: its own, or the node's.
func checkHost(host string, t inventory.Target) string {
	if host != "" {
		return host
	}
	return t.Address
}

// healthApplies says whether a component's check means anything now: a
// service must be running, a files-only component must be installed.
// When not, it says why.
func healthApplies(w Want, c *Component) (bool, string) {
	if w.Service {
		if c.Unit.ActiveState != "active" {
			return false, "not checked: unit is " + c.Unit.ActiveState
		}
		return true, ""
	}
	if c.Receipt == nil && c.ReceiptError == "" {
		return false, "not checked: not installed"
	}
	return true, ""
}
