package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

func newPlanCommand() *cobra.Command {
	var file, output string
	var verbose bool
	var timeout time.Duration
	var target targetFlags
	cmd := &cobra.Command{
		Use:   "plan -f FILE [--node GLOB] [--role R] [--component C]",
		Short: "Probe every node and show what apply would change",
		Long: `plan probes every node over SSH, compares what it finds with the manifest,
and prints each action apply would take, per node, with its reason.
It changes nothing on any node (it records no host key either). With
--node, --role or --component only those nodes are probed and only those
components' actions are shown. Nodes not probed within --timeout are
reported unknown; the node itself kills what the probe ran by then.

Every rendered file and unit that would change is shown as a unified diff
from the node's copy (read back, only for files that differ) to the
manifest's rendering; a file with sensitive: true shows only that it
changes.

Exit status: 0 when every node was probed and nothing would change, 2 when
every node was probed and something would change, 1 when any node could
not be probed (even if others have changes: a node drover cannot see must
never pass for one with nothing to do) or on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := cliLogger(verbose)
			l, d, err := compile(file)
			if err != nil {
				return err
			}
			pool, err := newReadOnlyPool(l.Cluster, log)
			if err != nil {
				return err
			}
			defer pool.Close()
			nodes, err := target.selectNodes(d)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			plan, _ := reconciler.PlanWithDiffs(ctx, pool, d, nodes, l.Cluster.Spec.SSH.Concurrency)
			plan = target.filterPlan(plan, nodes)
			if err := writePlan(cmd.OutOrStdout(), output, plan); err != nil {
				return err
			}
			if code := planExitCode(plan); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	addManifestFlag(cmd, &file)
	addOutputFlag(cmd, &output)
	target.add(cmd)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultPlanTimeout, "give up on nodes not probed by then")
	return cmd
}

// defaultPlanTimeout is plan's probe deadline, as probe's.
const defaultPlanTimeout = 2 * time.Minute

// planExitCode is plan's exit status: 1 when any node could not be
// probed, whatever the others would do, else 2 when something would
// change, else 0.
func planExitCode(p plan.Plan) int {
	switch {
	case len(unprobedNodes(p)) > 0:
		return 1
	case !p.Empty():
		return 2
	}
	return 0
}

// planReport is `drover plan -o json|yaml` (docs/CLI.md): the plan, and
// the nodes it could not see with why, listed apart so a script need not
// scan every node's known flag to learn the plan is incomplete.
type planReport struct {
	plan.Plan
	Unprobed []unprobedNode `json:"unprobed"`
	Summary  string         `json:"summary"`
}

type unprobedNode struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

func unprobedNodes(p plan.Plan) []unprobedNode {
	out := []unprobedNode{}
	for _, n := range p.Nodes {
		if !n.Known {
			out = append(out, unprobedNode{Node: n.Node, Reason: n.Reason})
		}
	}
	return out
}

// writePlan prints the plan in format; text is coloured on a terminal.
func writePlan(w io.Writer, format string, p plan.Plan) error {
	if format != outputText {
		return writeStructured(w, format, planReport{Plan: p, Unprobed: unprobedNodes(p), Summary: p.Summary()})
	}
	var b strings.Builder
	if err := plan.WritePlanText(&b, p); err != nil {
		return err
	}
	text := b.String()
	if useColor(w) {
		text = colorizePlan(text)
	}
	_, err := w.Write([]byte(text))
	return err
}
