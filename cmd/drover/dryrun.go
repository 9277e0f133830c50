package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

// dryRun walks every action of the plan through the executor with DryRun
// set, node by node, actions in plan order: the executor's gate records
// each step that would change a node as "would: …" and runs none, so the
// dry run takes exactly the code path of a real apply, up to the scripts.
// It returns how many actions it walked.
func dryRun(ctx context.Context, out io.Writer, r inventory.Runner, d *plan.Desired, p plan.Plan, obs map[string]probes.Observed) (int, error) {
	walked := 0
	for _, np := range p.Nodes {
		if !np.Known || len(np.Actions) == 0 {
			continue
		}
		n := d.Node(np.Node)
		fmt.Fprintf(out, "node %s\n", np.Node)
		for _, a := range np.Actions {
			var have *probes.Component
			if o, ok := obs[np.Node]; ok {
				have = o.Components[a.Component]
			}
			var buf bytes.Buffer
			e := execute.New(execute.Config{Runner: r, InstallRoot: d.InstallRoot, Generation: d.Generation, DryRun: true,
				HealthTimeout: d.Rollout.HealthTimeout, Log: wouldLogger(&buf), Desired: d})
			err := e.Do(ctx, n, a, n.Component(a.Component), have)
			fmt.Fprintf(out, "  %s\n", a.Describe())
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				// The console encoder appends the logger's fields after a tab.
				msg, _, _ := strings.Cut(line, "\t")
				if strings.HasPrefix(msg, "would: ") {
					fmt.Fprintf(out, "      %s\n", msg)
				}
			}
			if err != nil {
				fmt.Fprintf(out, "      would fail: %v\n", err)
			}
			walked++
		}
	}
	return walked, nil
}

// wouldLogger writes each message alone on a line to w: the dry run
// keeps the executor's "would: …" messages.
func wouldLogger(w io.Writer) *zap.Logger {
	enc := zapcore.NewConsoleEncoder(zapcore.EncoderConfig{MessageKey: "msg", LineEnding: "\n"})
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.InfoLevel))
}
