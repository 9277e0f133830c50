package execute

import (
	"context"
	"fmt"
	"time"
)

// inflightFile is the node-side record of an action in flight (see
// takeover.go in package reconciler for who reads it and why).
const inflightFile = ".inflight"

// InflightQuery is the script that prints "<start> <deadline>" (Unix
// seconds) of the record under root, or nothing when there is none.
func InflightQuery(root string) string {
	return "# drover query: in flight\n" + scriptHead(root) +
		`f="$root/` + inflightFile + `"; if [ -f "$f" ]; then read -r s e c < "$f" && echo "$s $e"; fi; :` + "\n"
}

// markInflight writes the node-side record of an action about to start.
func (e *Executor) markInflight(ctx context.Context, j *job) error {
	start := e.now()
	deadline := start.Add(time.Hour)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`t="$root/.inflight.tmp"
printf '%%s %%s %%s\n' %d %d %s > "$t"
mv -f -- "$t" "$root/%s"
echo changed
`, start.Unix(), deadline.Unix(), j.name, inflightFile)
	_, err := e.runStep(ctx, j, "mark in flight", script, nil)
	return err
}

// clearInflight removes the record once the action has ended.
func (e *Executor) clearInflight(ctx context.Context, j *job) error {
	script := lockedPreamble(e.InstallRoot, e.lockWait()) + fmt.Sprintf(`if [ -e "$root/%[1]s" ]; then rm -f -- "$root/%[1]s"; echo changed; fi
`, inflightFile)
	_, err := e.runStep(ctx, j, "clear in flight", script, nil)
	return err
}
