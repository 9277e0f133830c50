package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

func newProbeCommand() *cobra.Command {
	var (
		file, output string
		target       targetFlags
		timeout      time.Duration
		verbose      bool
	)
	cmd := &cobra.Command{
		Use:   "probe -f FILE [--node GLOB] [--role R] [--component C] [-o text|json|yaml]",
		Short: "Probe nodes over SSH and show what each has against the manifest",
		Long: `probe connects to every node (or those --node and --role choose) in parallel and
prints, per node and component, the desired and observed version, whether it
is in sync, its health and why. A node that cannot be probed is Unknown with
its reason (unreachable, auth, hostkey, timeout, sudo, probe-error).
It changes nothing on any node.

Exit status: 0 when every node was probed, 1 when any is Unknown or on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, d, err := compile(file)
			if err != nil {
				return err
			}
			selected, err := target.selectNodes(d)
			if err != nil {
				return err
			}
			pool, err := newReadOnlyPool(l.Cluster, cliLogger(verbose))
			if err != nil {
				return err
			}
			defer pool.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			obs := reconciler.ProbeNodes(ctx, pool, d, selected, l.Cluster.Spec.SSH.Concurrency)
			report := target.filterStatus(probeReport(d, selected, obs))
			if err := writeProbeReport(cmd.OutOrStdout(), output, report); err != nil {
				return err
			}
			for _, n := range report {
				if !n.Reachable {
					return &exitError{code: 1}
				}
			}
			return nil
		},
	}
	addManifestFlag(cmd, &file)
	target.add(cmd)
	addOutputFlag(cmd, &output)
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up on nodes not probed by then")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	return cmd
}

// probeReport is the status of the selected nodes: the one status model
// (reconciler.StatusOf) the daemon reports too, so `drover probe` and
// `drover status` say the same of the same node.
func probeReport(d *plan.Desired, nodes []*plan.DesiredNode, obs map[string]probes.Observed) []plan.NodeStatus {
	all := plan.StatusOf(d, obs)
	out := make([]plan.NodeStatus, 0, len(nodes))
	for _, ns := range all {
		if slices.ContainsFunc(nodes, func(n *plan.DesiredNode) bool { return n.Name == ns.Name }) {
			out = append(out, ns)
		}
	}
	return out
}

func writeProbeReport(w io.Writer, format string, report []plan.NodeStatus) error {
	if format == outputText {
		return writeNodeTable(w, report)
	}
	return writeStructured(w, format, report)
}

// writeNodeTable is the per node and component table of `drover probe`
// and `drover status`: one printer, so the two show a node alike.
func writeNodeTable(w io.Writer, nodes []plan.NodeStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOMPONENT\tDESIRED\tOBSERVED\tSYNC\tHEALTH\tREASON")
	for _, n := range nodes {
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t%s\t%s\n", n.Name, plan.SyncUnknown, plan.HealthUnknown, oneLine(n.Reason))
			continue
		}
		if len(n.Components) == 0 {
			reason := n.Reason
			if reason == "" {
				reason = "nothing to run here"
			}
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\n", n.Name, oneLine(reason))
		}
		for _, c := range n.Components {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, c.Name, dash(c.DesiredVersion), oneLine(dash(c.ObservedVersion)), c.Sync, c.Health, oneLine(c.Reason))
		}
	}
	return tw.Flush()
}

// oneLine keeps a string from the node (a reason may quote its stderr,
// a version is read from its receipt) on its row, with every control
// character escaped (internal/safetext).
func oneLine(s string) string {
	return safetext.Line(strings.Join(strings.Fields(s), " "))
}
