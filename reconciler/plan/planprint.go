package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/drover-project/drover/internal/safetext"
)

// PlanCounts is how many actions of each kind a plan holds, and how many
// nodes could not be planned or are paused.
type PlanCounts struct {
	Install, Upgrade, Reconfigure, Restart, Remove int
	Unknown, Paused                                int
}

// Counts tallies the plan for its summary line.
func (p Plan) Counts() PlanCounts {
	var c PlanCounts
	for _, np := range p.Nodes {
		if !np.Known {
			c.Unknown++
		}
		if np.Paused {
			c.Paused++
		}
		for _, a := range np.Actions {
			switch a.Kind {
			case ActionInstall:
				c.Install++
			case ActionUpgrade:
				c.Upgrade++
			case ActionReconfigure:
				c.Reconfigure++
			case ActionRestart:
				c.Restart++
			case ActionRemove:
				c.Remove++
			}
		}
	}
	return c
}

// Summary is the plan's last line, in the manner of terraform plan.
func (p Plan) Summary() string {
	c := p.Counts()
	var tail []string
	if c.Unknown > 0 {
		tail = append(tail, plural(c.Unknown, "node")+" unknown")
	}
	if p.Paused {
		tail = append(tail, "cluster paused")
	} else if c.Paused > 0 {
		tail = append(tail, plural(c.Paused, "node")+" paused")
	}
	if p.Empty() {
		if len(tail) == 0 {
			return "No changes. The cluster matches the manifest."
		}
		return "No changes on the nodes that answered; " + strings.Join(tail, "; ") + "."
	}
	s := fmt.Sprintf("Plan: %d to install, %d to upgrade, %d to reconfigure, %d to restart, %d to remove",
		c.Install, c.Upgrade, c.Reconfigure, c.Restart, c.Remove)
	if len(tail) > 0 {
		s += "; " + strings.Join(tail, "; ")
	}
	return s + "."
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Describe is one action as plan and apply print it, e.g.
// "~ upgrade node-exporter 1.8.2 -> 1.9.1 (version changed in manifest)".
func (a Action) Describe() string {
	kind := string(a.Kind)
	if a.Downgrade {
		kind = "downgrade"
	}
	s := fmt.Sprintf("%s %s %s", actionSymbol(a.Kind), kind, a.Component)
	if v := actionVersions(a); v != "" {
		s += " " + v
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	if a.Effect != "" {
		s += " [" + a.Effect + "]"
	}
	return s + a.MembershipNote()
}

// MembershipNote is " [join via m1: m1,m2,m3,m4]" for a change of a
// quorum group's membership, "" for any other action.
func (a Action) MembershipNote() string {
	if a.Membership == "" {
		return ""
	}
	s := " [" + a.Membership
	if a.Via != "" {
		s += " via " + a.Via
	}
	if a.Members != "" {
		s += ": " + a.Members
	}
	return s + "]"
}

func actionSymbol(k ActionKind) string {
	switch k {
	case ActionInstall:
		return "+"
	case ActionRemove:
		return "-"
	default:
		return "~"
	}
}

// actionVersions is "1.8.2 -> 1.9.1" for a change of version, the
// version removed for a removal, and the version concerned otherwise.
func actionVersions(a Action) string {
	switch {
	case a.Kind == ActionRemove:
		return a.From
	case a.From != "" && a.From != a.To && a.Kind != ActionInstall:
		return a.From + " -> " + a.To
	default:
		return a.To
	}
}

// WritePlanText prints the plan for people: each node that would change
// or could not be planned, its actions in the order they would run, and
// a summary line. Nodes with nothing to do are left out.
func WritePlanText(w io.Writer, p Plan) error {
	bw := bufio.NewWriter(w)
	if p.Paused {
		fmt.Fprintln(bw, "The cluster is paused: drover will change nothing until it is resumed.")
		fmt.Fprintln(bw)
	}
	for _, np := range p.Nodes {
		if np.Known && len(np.Actions) == 0 {
			continue
		}
		header := "node " + np.Node
		if np.Address != "" {
			header += " (" + np.Address + ")"
		}
		if np.Paused && !p.Paused {
			header += " [paused: changes are held]"
		}
		// Reasons and observed versions come from the node.
		fmt.Fprintln(bw, safetext.Line(header))
		if !np.Known {
			fmt.Fprintf(bw, "  ! unknown: %s\n", safetext.Line(np.Reason))
		}
		for _, a := range np.Actions {
			fmt.Fprintf(bw, "  %s\n", safetext.Line(a.Describe()))
			if a.Kind != ActionRemove {
				writeChanges(bw, np.Changes[a.Component])
			}
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, p.Summary())
	return bw.Flush()
}

// WritePlanJSON prints the plan for machines.
func WritePlanJSON(w io.Writer, p Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// writeChanges prints an action's file changes under it: one line per
// file, then its diff indented, like `ansible --check --diff`.
func writeChanges(w io.Writer, changes []FileChange) {
	for _, c := range changes {
		symbol := map[string]string{ChangeCreate: "+", ChangeDelete: "-"}[c.Change]
		if symbol == "" {
			symbol = "~"
		}
		line := "      " + symbol + " " + c.Path
		if c.ModeFrom != "" {
			line += fmt.Sprintf(" (mode %s -> %s)", c.ModeFrom, c.ModeTo)
		}
		if c.Note != "" {
			line += " " + c.Note
		}
		fmt.Fprintln(w, safetext.Line(line))
		// The diff shows the node's copy of the file: its text is the
		// node's, escaped line by line.
		for _, l := range strings.SplitAfter(c.Diff, "\n") {
			if l != "" {
				fmt.Fprintln(w, "          "+safetext.Line(strings.TrimSuffix(l, "\n")))
			}
		}
	}
}
