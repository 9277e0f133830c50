package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/reconciler"
)

func newStatusCommand() *cobra.Command {
	var addr, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of a running daemon",
		Long: `status asks a running drover daemon for its view of the cluster: the manifest
generation and any load error, the rollout state, and per node and component
sync, health, versions and the reason a node has not converged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + addr + api.PathStatus)
			if err != nil {
				return fmt.Errorf("no drover daemon answering on %s: %w", addr, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", addr, resp.Status)
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var st reconciler.ClusterStatus
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9464", "address the daemon listens on")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printStatus(out io.Writer, st reconciler.ClusterStatus) {
	fmt.Fprintf(out, "cluster %s, generation %d (%s)\n", safetext.Line(st.Cluster), st.Generation, safetext.Line(short(st.Hash)))
	if !st.LoadSuccess {
		fmt.Fprintf(out, "manifest REJECTED, the last good one is in force:\n  %s\n", strings.ReplaceAll(safetext.Text(st.LoadError), "\n", "\n  "))
	}
	if st.Paused {
		fmt.Fprintln(out, "paused: probing and reporting only")
	}
	if st.Rollout.Halted {
		fmt.Fprintf(out, "rollout HALTED: %s\n", safetext.Line(st.Rollout.Reason))
	}
	converged := 0
	for _, n := range st.Nodes {
		if n.Converged {
			converged++
		}
	}
	fmt.Fprintf(out, "%d/%d nodes converged\n\n", converged, len(st.Nodes))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOMPONENT\tDESIRED\tOBSERVED\tSYNC\tHEALTH\tREASON")
	for _, n := range st.Nodes {
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tUnknown\tUnknown\t%s\n", safetext.Line(n.Name), safetext.Line(n.Reason))
			continue
		}
		if len(n.Components) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\n", safetext.Line(n.Name), safetext.Line(n.Reason))
		}
		for _, c := range n.Components {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Line(n.Name), safetext.Line(c.Name), safetext.Line(dash(c.DesiredVersion)),
				safetext.Line(dash(c.ObservedVersion)), safetext.Line(string(c.Sync)), safetext.Line(string(c.Health)), safetext.Line(c.Reason))
		}
	}
	tw.Flush()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
