package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/reconciler/plan"
)

func newStatusCommand() *cobra.Command {
	var addr, output, tokenFile string
	var access statusAccess
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of a running daemon",
		Long: `status asks a running drover daemon for its view of the cluster: the manifest
generation and any load error, the rollout state, and per node and component
sync, health, versions and the reason a node has not converged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, req, err := access.request(addr, api.PathStatus)
			if err != nil {
				return err
			}
			token, err := clientToken(tokenFile)
			if err != nil {
				return err
			}
			if token != "" {
				// Not Authorization: basic auth of the web config may use it.
				req.Header.Set(console.HeaderToken, token)
			}
			req = req.WithContext(cmd.Context())
			resp, err := client.Do(req)
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
			if output != outputText {
				if !json.Valid(body) {
					return fmt.Errorf("%s: the daemon's status is not JSON", addr)
				}
				return writeStructuredJSON(cmd.OutOrStdout(), output, body)
			}
			var st plan.ClusterStatus
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	addAddrFlag(cmd, &addr, "address the daemon listens on (HOST:PORT, or https://HOST:PORT under TLS)")
	access.addFlags(cmd)
	addTokenFlag(cmd, &tokenFile)
	addOutputFlag(cmd, &output)
	return cmd
}

func printStatus(out io.Writer, st plan.ClusterStatus) {
	fmt.Fprintf(out, "cluster %s, generation %d (%s)\n", safetext.Line(st.Cluster), st.Generation, safetext.Line(short(st.Hash)))
	if !st.LoadSuccess {
		fmt.Fprintf(out, "manifest REJECTED, the last good one is in force:\n  %s\n", strings.ReplaceAll(safetext.Text(st.LoadError), "\n", "\n  "))
	}
	if st.Paused {
		fmt.Fprintln(out, "paused: probing and reporting only")
	}
	if st.HA != nil {
		printHA(out, st.HA)
	}
	if st.Suspended {
		fmt.Fprintln(out, "SUSPENDED by the operator: probing and reporting only, no action starts (drover resume lifts it)")
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
	writeNodeTable(out, st.Nodes)
	printHistory(out, st.Nodes, recentActions)
}

// printHA says which daemon answered, who leads, whether its manifest
// is the generation acted on, and why it changes no node.
func printHA(out io.Writer, h *plan.HAStatus) {
	role := "leader"
	if !h.Leading {
		role = "standby"
	}
	leader := h.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(out, "daemon %s (%s of %d; leader: %s), manifest %s", safetext.Line(h.Name), role, h.Members, safetext.Line(leader), short(h.Manifest))
	switch {
	case h.Acted == nil:
		fmt.Fprint(out, ", no generation acted on yet\n")
	case h.ManifestMismatch:
		fmt.Fprintf(out, " DIFFERS from generation %d acted on (%s, by %s)\n", h.Acted.Seq, short(h.Acted.Hash), safetext.Line(h.Acted.By))
	default:
		fmt.Fprintf(out, " = generation %d acted on\n", h.Acted.Seq)
	}
	if h.Why != "" {
		fmt.Fprintf(out, "changes no node: %s\n", safetext.Line(h.Why))
	}
}

// recentActions is how many of the last actions `drover status` lists.
const recentActions = 10

// printHistory lists the cluster's last actions, oldest first: what the
// daemon did lately (kept across its restarts), across every node.
func printHistory(out io.Writer, nodes []plan.NodeStatus, n int) {
	type entry struct {
		node string
		rec  plan.ActionRecord
	}
	var all []entry
	for _, node := range nodes {
		for _, r := range node.History {
			all = append(all, entry{node.Name, r})
		}
	}
	if len(all) == 0 {
		return
	}
	slices.SortStableFunc(all, func(a, b entry) int { return a.rec.Time.Compare(b.rec.Time) })
	all = all[max(0, len(all)-n):]
	fmt.Fprintln(out, "\nrecent actions:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNODE\tACTION\tCOMPONENT\tVERSION\tRESULT\tDURATION")
	for _, e := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.rec.Time.UTC().Format(time.RFC3339), oneLine(e.node), oneLine(string(e.rec.Action)), oneLine(e.rec.Component),
			dash(e.rec.Version), e.rec.Result, e.rec.Duration.Round(time.Millisecond))
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
