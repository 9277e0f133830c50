package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler"
)

func newPlanCommand() *cobra.Command {
	var file, output string
	var verbose bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Probe every node and show what apply would change",
		Long: `plan probes every node over SSH, compares what it finds with the manifest,
and prints each action apply would take, per node, with its reason.
It changes nothing on any node. Nodes not probed within --timeout are
reported unknown; the node itself kills what the probe ran by then.

Exit status: 0 when nothing would change, 2 when something would, 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: must be text or json", output)
			}
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
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			plan := probeAndDiff(ctx, pool, d, l.Cluster.Spec.SSH.Concurrency)
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(plan); err != nil {
					return err
				}
			} else {
				if err := reconciler.WritePlanText(out, plan); err != nil {
					return err
				}
			}
			if !plan.Empty() {
				return &exitError{code: 2}
			}
			for _, n := range plan.Nodes {
				if !n.Known {
					return &exitError{code: 1}
				}
			}
			return nil
		},
	}
	addManifestFlag(cmd, &file)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultPlanTimeout, "give up on nodes not probed by then")
	return cmd
}

// defaultPlanTimeout is plan's and apply's probe deadline, as probe's.
const defaultPlanTimeout = 2 * time.Minute

// probeAndDiff probes every node in parallel and diffs the cluster.
func probeAndDiff(ctx context.Context, pool inventory.Runner, d *reconciler.Desired, parallel int) reconciler.Plan {
	reqs := make(map[string]probes.Request, len(d.Nodes))
	targets := make([]inventory.Target, 0, len(d.Nodes))
	for _, n := range d.Nodes {
		reqs[n.Name] = reconciler.RequestFor(d, n)
		targets = append(targets, n.Target)
	}
	obs := probes.ProbeAll(ctx, pool, targets, reqs, parallel)
	return reconciler.Diff(d, obs)
}
