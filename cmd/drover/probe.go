package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler"
)

func newProbeCommand() *cobra.Command {
	var (
		file, output string
		nodes        []string
		timeout      time.Duration
		verbose      bool
	)
	cmd := &cobra.Command{
		Use:   "probe -f FILE [--node N] [-o table|json]",
		Short: "Probe nodes over SSH and show what each has against the manifest",
		Long: `probe connects to every node (or the ones named with --node) in parallel and
prints, per node and component, the desired and observed version, whether it
is in sync, its health and why. A node that cannot be probed is Unknown with
its reason (unreachable, auth, hostkey, timeout, sudo, probe-error).
It changes nothing on any node.

Exit status: 0 when every node was probed, 1 when any is Unknown or on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: must be table or json", output)
			}
			l, err := manifests.Load(file)
			if err != nil {
				return err
			}
			c := l.Cluster
			targets, err := selectTargets(inventory.TargetsFromManifest(c), nodes)
			if err != nil {
				return err
			}
			pool, err := newReadOnlyPool(c, cliLogger(verbose))
			if err != nil {
				return err
			}
			defer pool.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			obs := probes.ProbeAll(ctx, pool, targets, probes.RequestsFromManifest(c), c.Spec.SSH.Concurrency)
			report := probeReport(c, targets, obs)
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
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "probe only this node (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up on nodes not probed by then")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	return cmd
}

// selectTargets keeps the named nodes, in manifest order; none named
// means all. An unknown name is an error, not an empty report.
func selectTargets(all []inventory.Target, names []string) ([]inventory.Target, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []inventory.Target
	for _, name := range names {
		if !slices.ContainsFunc(all, func(t inventory.Target) bool { return t.Name == name }) {
			return nil, fmt.Errorf("--node %s: no such node in the manifest", name)
		}
	}
	for _, t := range all {
		if slices.Contains(names, t.Name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// probeReport compares each node's probe with the manifest. Sync here is
// the simple reading: installed version is the desired one, the rendered
// files are on disk as rendered, the unit file is there when there is a
// service. The reconciler's diff decides what to do; this shows the state.
func probeReport(c *manifests.Cluster, targets []inventory.Target, obs map[string]probes.Observed) []reconciler.NodeStatus {
	out := make([]reconciler.NodeStatus, 0, len(targets))
	for _, t := range targets {
		o := obs[t.Name]
		ns := reconciler.NodeStatus{Name: t.Name, Address: t.Address, Reachable: o.Known, LastProbe: o.ProbedAt, Components: []reconciler.ComponentStatus{}}
		if !o.Known {
			ns.Reason = strings.TrimSpace(o.Reason + ": " + o.Error)
			out = append(out, ns)
			continue
		}
		node, _ := c.NodeByName(t.Name)
		wanted := map[string]bool{}
		for i := range c.Spec.Components {
			comp := &c.Spec.Components[i]
			if comp.State == manifests.StateAbsent || !comp.Matches(node) {
				continue
			}
			wanted[comp.Name] = true
			ns.Components = append(ns.Components, wantedStatus(c, node, comp, o.Components[comp.Name]))
		}
		var extra []string
		for name := range o.Components {
			if !wanted[name] {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		for _, name := range extra {
			oc := o.Components[name]
			ns.Components = append(ns.Components, reconciler.ComponentStatus{
				Name: name, ObservedVersion: observedVersion(oc),
				Sync: reconciler.OutOfSync, Health: reconciler.HealthUnknown, Reason: "should be absent",
			})
		}
		ns.Converged = true
		for _, cs := range ns.Components {
			if cs.Sync != reconciler.Synced || cs.Health != reconciler.Healthy {
				ns.Converged = false
				if ns.Reason == "" {
					ns.Reason = cs.Name + ": " + cs.Reason
				}
			}
		}
		out = append(out, ns)
	}
	return out
}

// wantedStatus is one component the node should have.
func wantedStatus(c *manifests.Cluster, node *manifests.Node, comp *manifests.Component, oc *probes.Component) reconciler.ComponentStatus {
	cs := reconciler.ComponentStatus{Name: comp.Name, DesiredVersion: comp.Version, Sync: reconciler.Synced}
	if oc == nil { // Probe guarantees a block per wanted component
		cs.Sync, cs.Health, cs.Reason = reconciler.SyncUnknown, reconciler.HealthUnknown, "not in probe output"
		return cs
	}
	cs.ObservedVersion = observedVersion(oc)
	outOfSync := func(why string) {
		if cs.Sync == reconciler.Synced {
			cs.Sync, cs.Reason = reconciler.OutOfSync, why
		}
	}
	switch {
	case oc.ReceiptError != "":
		outOfSync(oc.ReceiptError)
	case oc.Receipt == nil:
		outOfSync("not installed")
	case oc.Receipt.Version != comp.Version:
		outOfSync(fmt.Sprintf("version %s, want %s", oc.Receipt.Version, comp.Version))
	case oc.Active != comp.Version:
		outOfSync(fmt.Sprintf("active link points at %q, want %s", oc.Active, comp.Version))
	}
	if len(oc.MissingFiles) > 0 {
		outOfSync(fmt.Sprintf("%d of %d files missing", len(oc.MissingFiles), len(comp.Files)))
	}
	if files, err := c.Render(node, comp); err != nil {
		cs.Sync, cs.Reason = reconciler.SyncUnknown, err.Error()
	} else if manifests.ConfigHash(manifests.Digests(files)) != oc.FilesHash {
		outOfSync("config files differ from the manifest")
	}
	if comp.Service != nil && !oc.Unit.Exists {
		outOfSync("unit file missing")
	}
	cs.Health = componentHealth(comp, oc)
	if cs.Sync == reconciler.Synced && cs.Health != reconciler.Healthy {
		cs.Reason = oc.Health.Message
		if cs.Reason == "" && comp.Service != nil {
			cs.Reason = "unit is " + oc.Unit.ActiveState
		}
	}
	return cs
}

// componentHealth reads the probe's health check, or the unit's state
// when there is no check.
func componentHealth(comp *manifests.Component, oc *probes.Component) reconciler.Health {
	switch {
	case oc.Receipt == nil && oc.ReceiptError == "":
		return reconciler.Missing
	case oc.Health.Checked && oc.Health.OK:
		return reconciler.Healthy
	case oc.Health.Checked:
		return reconciler.Degraded
	case comp.Service == nil:
		// Files only and installed: a check would have run if configured.
		return reconciler.Healthy
	}
	switch oc.Unit.ActiveState {
	case "active":
		return reconciler.Healthy
	case "activating", "reloading":
		return reconciler.Progressing
	case "unknown", "":
		return reconciler.HealthUnknown
	default:
		return reconciler.Degraded
	}
}

func observedVersion(oc *probes.Component) string {
	if oc == nil {
		return ""
	}
	if oc.Receipt != nil {
		return oc.Receipt.Version
	}
	return oc.Active
}

func writeProbeReport(w io.Writer, format string, report []reconciler.NodeStatus) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOMPONENT\tDESIRED\tOBSERVED\tSYNC\tHEALTH\tREASON")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, n := range report {
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t%s\t%s\n", n.Name, reconciler.SyncUnknown, reconciler.HealthUnknown, oneLine(n.Reason))
			continue
		}
		if len(n.Components) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t%s\t%s\n", n.Name, reconciler.Synced, reconciler.Healthy, "nothing to run here")
		}
		for _, c := range n.Components {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, c.Name, dash(c.DesiredVersion), oneLine(dash(c.ObservedVersion)), c.Sync, c.Health, oneLine(c.Reason))
		}
	}
	return tw.Flush()
}

// oneLine keeps a string from the node (a reason may quote its stderr,
// a version is read from its receipt) on its row, with every control
// character escaped.
func oneLine(s string) string {
	return safetext.Line(strings.Join(strings.Fields(s), " "))
}
