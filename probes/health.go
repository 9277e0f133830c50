package probes

import (
	"context"
	"math"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// checkFunc runs one kind of health check against a node. Checks run
// from the node: exec on it, tcp and http through the node's SSH
// connection (Runner.DialTCP), so "localhost" means the node.
type checkFunc func(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult

// healthChecks is the table of check kinds. A probe folds exec into its
// script so it stays one SSH session, and runs tcp and http from here
// beside it; CheckHealth runs any kind on its own (rollout health gates).
func healthChecks() map[string]checkFunc {
	return map[string]checkFunc{
		"exec": execCheck,
		"http": httpCheck,
		"tcp":  tcpCheck,
	}
}

// HealthKind names the check h configures: exec, http, tcp, or "" for none.
func HealthKind(h *manifests.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Exec != nil:
		return "exec"
	case h.HTTP != nil:
		return "http"
	case h.TCP != nil:
		return "tcp"
	default:
		return ""
	}
}

// CheckHealth runs the check h on node t by itself, outside a probe.
func CheckHealth(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult {
	check, ok := healthChecks()[HealthKind(h)]
	if !ok {
		return HealthResult{Message: "no health check"}
	}
	return check(ctx, r, t, h)
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
