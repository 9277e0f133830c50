package probes

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// execCheck runs the exec check in a session of its own, the same way the
// probe script's dp_exec does: from /, under timeout(1), output discarded.
func execCheck(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult {
	if len(h.Exec.Command) == 0 {
		return HealthResult{Message: "health exec command is empty"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cd / && exec timeout -k 2 %d", timeoutSeconds(h))
	for _, a := range h.Exec.Command {
		b.WriteString(" " + inventory.Quote(a))
	}
	b.WriteString(" </dev/null >/dev/null 2>&1\n")
	res, err := r.Run(ctx, t, b.String(), nil)
	if err != nil {
		return HealthResult{Message: "exec check: " + err.Error()}
	}
	return execResult(res.ExitCode)
}

// execResult turns the exit code of a health command into a result.
func execResult(code int) HealthResult {
	switch code {
	case 0:
		return HealthResult{Checked: true, OK: true, Message: "exit 0"}
	case 124:
		return HealthResult{Checked: true, Message: "timed out (exit 124)"}
	case 127:
		return HealthResult{Checked: true, Message: "command not found (exit 127)"}
	default:
		return HealthResult{Checked: true, Message: "exit " + strconv.Itoa(code)}
	}
}
