package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/reconciler"
)

func newPlanCommand() *cobra.Command {
	var file, output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Probe every node and show what apply would change",
		Long: `plan probes every node over SSH, compares what it finds with the manifest,
and prints each action apply would take, per node, with its reason.
It changes nothing on any node.

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
			pool, err := newPool(l.Cluster, log)
			if err != nil {
				return err
			}
			defer pool.Close()
			plan := reconciler.ProbeAndDiff(cmd.Context(), pool, d, l.Cluster.Spec.SSH.Concurrency)
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
	return cmd
}
