package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/drover-project/drover/reconciler/plan"
)

// Recap states, per node, at the end of apply (like Ansible's PLAY RECAP).
const (
	recapOK          = "ok"          // nothing needed doing
	recapChanged     = "changed"     // actions ran and it converged
	recapFailed      = "failed"      // it did not converge
	recapUnreachable = "unreachable" // it could not be probed
)

type recapRow struct {
	Node         string
	State        string
	Done, Failed int
	Reason       string
}

// buildRecap is the recap of every node: its last status and how many of
// its actions succeeded and failed during this apply.
func buildRecap(nodes []plan.NodeStatus, done, failed map[string]int) []recapRow {
	rows := make([]recapRow, 0, len(nodes))
	for _, n := range nodes {
		r := recapRow{Node: n.Name, Done: done[n.Name], Failed: failed[n.Name]}
		switch {
		case !n.Reachable:
			r.State, r.Reason = recapUnreachable, n.Reason
		case !n.Converged:
			r.State, r.Reason = recapFailed, n.Reason
		// A node that converged after a failed try changed; its counts
		// show the failure.
		case r.Done > 0 || r.Failed > 0:
			r.State = recapChanged
		default:
			r.State = recapOK
		}
		rows = append(rows, r)
	}
	return rows
}

func writeRecap(w io.Writer, rows []recapRow) error {
	fmt.Fprintln(w, "\nRecap:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%d done, %d failed\t%s\n", r.Node, r.State, r.Done, r.Failed, oneLine(r.Reason))
	}
	return tw.Flush()
}
