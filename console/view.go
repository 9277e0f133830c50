package console

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// The views are what the templates show, computed from a status and a
// plan by pure functions, so the words and classes of every state are
// decided (and tested) here, not in the templates.

// badge is a state shown as a symbol, a word and a colour class: the
// colour is never the only clue.
type badge struct {
	Class  string // ok, warn, bad, busy, idle
	Symbol string
	Label  string
}

var (
	badgeConverged    = badge{"ok", "✓", "Converged"}
	badgeNotConverged = badge{"warn", "●", "Not converged"}
	badgeUnreachable  = badge{"bad", "✗", "Unreachable"}
	badgeNotProbed    = badge{"idle", "…", "Not probed yet"}
	badgePaused       = badge{"idle", "‖", "Paused"}
	badgeUpdating     = badge{"busy", "↻", "Updating"}
)

func syncBadge(s plan.Sync) badge {
	switch s {
	case plan.Synced:
		return badge{"ok", "✓", "Synced"}
	case plan.OutOfSync:
		return badge{"warn", "≠", "OutOfSync"}
	}
	return badge{"idle", "?", "Unknown"}
}

func healthBadge(h plan.Health) badge {
	switch h {
	case plan.Healthy:
		return badge{"ok", "♥", "Healthy"}
	case plan.Progressing:
		return badge{"busy", "↻", "Progressing"}
	case plan.Degraded:
		return badge{"bad", "✗", "Degraded"}
	case plan.Missing:
		return badge{"warn", "∅", "Missing"}
	}
	return badge{"idle", "?", "Unknown"}
}

// nodeBadge puts a node in one state, by the rules of drover_nodes{state}
// (an unreachable node is unreachable whatever it was before), and shows
// a node with an action running as updating.
func nodeBadge(n plan.NodeStatus, clusterPaused bool) badge {
	switch {
	case !n.Reachable && n.LastProbeAttempt.IsZero() && n.LastProbe.IsZero() && n.ProbeError == "":
		return badgeNotProbed
	case !n.Reachable:
		return badgeUnreachable
	case n.Converged:
		return badgeConverged
	case n.InFlight != nil:
		return badgeUpdating
	case n.Paused || clusterPaused:
		return badgePaused
	}
	return badgeNotConverged
}

type counts struct {
	Total, Converged, NotConverged, Unreachable, Paused int
}

type clusterView struct {
	Cluster    string
	Generation int64
	Hash       string
	HashShort  string
	Loaded     bool
	LoadErrors []string
	LastLoad   string
	Paused     bool
	Suspended  bool
	Counts     counts
	Rollout    rolloutView
	Components []string  // the matrix's columns
	Rows       []nodeRow // the page of the matrix shown
	Page       pageView
	Plan       []planNode
	PlanKnown  bool // some node has been probed, so the plan means something
}

type rolloutView struct {
	Halted     bool
	HaltReason string
	HaltWhere  string // "zk on m2"
	InFlight   []string
	Pending    int
	Waiting    []plan.NodeWaiting
	Active     bool
}

type nodeRow struct {
	Name    string
	Address string
	State   badge
	Reason  string
	Cells   []cell
}

// cell is one component on one node in the matrix.
type cell struct {
	ID       string // stable across updates, so an opened cell stays open
	Placed   bool   // the node should have it, or has it
	Desired  string
	Observed string
	Sync     badge
	Health   badge
	Reason   string
	Title    string
}

type planNode struct {
	Node    string
	Known   bool
	Reason  string
	Paused  bool
	Actions []string
	Changes []fileChangeView
}

// fileChangeView is one file or unit a node's plan would write
// differently, with its diff split into lines for colouring.
type fileChangeView struct {
	ID        string // stable across updates, so an opened diff stays open
	Component string
	Path      string
	Change    string // create, update, delete
	Mode      string // "0644 → 0600" when the mode changes
	Note      string // instead of a diff: sensitive, or not read
	Lines     []diffLine
}

// diffLine is one line of a unified diff and its class: add, del, hunk,
// head or "" for context.
type diffLine struct {
	Text, Class string
}

// diffLines splits a unified diff for the page.
func diffLines(d string) []diffLine {
	if d == "" {
		return nil
	}
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
		class := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			class = "head"
		case strings.HasPrefix(l, "@@"):
			class = "hunk"
		case strings.HasPrefix(l, "+"):
			class = "add"
		case strings.HasPrefix(l, "-"):
			class = "del"
		}
		out = append(out, diffLine{Text: l, Class: class})
	}
	return out
}

// newChangeViews is a node's file changes, by component in name order.
func newChangeViews(np plan.NodePlan) []fileChangeView {
	var out []fileChangeView
	for _, comp := range slices.Sorted(maps.Keys(np.Changes)) {
		for _, fc := range np.Changes[comp] {
			v := fileChangeView{
				ID:        "diff-" + np.Node + "-" + comp + "-" + fc.Path,
				Component: comp, Path: fc.Path, Change: fc.Change, Note: fc.Note, Lines: diffLines(fc.Diff),
			}
			if fc.ModeFrom != "" || fc.ModeTo != "" {
				v.Mode = orDash(fc.ModeFrom) + " → " + orDash(fc.ModeTo)
			}
			if fc.Sensitive && v.Note == "" {
				v.Note = plan.NoteSensitive
			}
			if fc.Sensitive {
				v.Lines = nil // never shown, whatever a caller put there
			}
			out = append(out, v)
		}
	}
	return out
}

// nodesPerPage bounds the matrix's rows: a page of a fleet of thousands
// stays small enough to render at once and to fetch again on each change.
const nodesPerPage = 200

// clusterQuery is which page of the matrix the cluster page shows: the
// nodes in one state (plan.InState) and a 1-based page of them.
type clusterQuery struct {
	State string
	Page  int
}

// parseClusterQuery reads state and page. Other parameters are not the
// page's: ?token= (the link the daemon prints) is read by the page's
// script, which keeps it in the browser's session storage.
func parseClusterQuery(v url.Values) (clusterQuery, error) {
	q := clusterQuery{Page: 1}
	for key, vals := range v {
		if key != "state" && key != "page" {
			continue
		}
		if len(vals) != 1 {
			return q, fmt.Errorf("%s given %d times, want once", key, len(vals))
		}
		switch key {
		case "state":
			switch vals[0] {
			case "", plan.StateConverged, plan.StateNotConverged, plan.StateUnreachable:
				q.State = vals[0]
			default:
				return q, fmt.Errorf("state=%q: want %s, %s or %s", vals[0], plan.StateConverged, plan.StateNotConverged, plan.StateUnreachable)
			}
		case "page":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 {
				return q, fmt.Errorf("page=%q: want a whole number, 1 or more", vals[0])
			}
			q.Page = n
		}
	}
	return q, nil
}

// encode is the query as a URL query string ("" for the first page of
// every node).
func (q clusterQuery) encode() string {
	v := url.Values{}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return v.Encode()
}

// pageView is the matrix's place in the fleet: rows First..Last of the
// Matched nodes in the selected state, with links to the pages around it
// and to the other states.
type pageView struct {
	First, Last, Matched int
	State                string
	Prev, Next           string // "" when there is none
	Filters              []filterLink
}

type filterLink struct {
	Label, URL string
	Current    bool
}

func pageURL(q clusterQuery) string {
	if e := q.encode(); e != "" {
		return "/?" + e
	}
	return "/"
}

func newClusterView(st plan.ClusterStatus, p plan.Plan, q clusterQuery) clusterView {
	v := clusterView{
		Cluster: st.Cluster, Generation: st.Generation, Hash: st.Hash, HashShort: short(st.Hash, 12),
		Loaded: st.LoadSuccess, LoadErrors: loadErrors(st.LoadError), LastLoad: clock(st.LastLoadTime),
		Paused: st.Paused, Suspended: st.Suspended, Rollout: newRolloutView(st.Rollout),
	}
	for _, n := range st.Nodes {
		for _, c := range n.Components {
			if !slices.Contains(v.Components, c.Name) {
				v.Components = append(v.Components, c.Name)
			}
		}
	}
	skip := (q.Page - 1) * nodesPerPage
	for _, n := range st.Nodes {
		state := nodeBadge(n, st.Paused)
		v.Counts.Total++
		switch state {
		case badgeConverged:
			v.Counts.Converged++
		case badgeUnreachable, badgeNotProbed:
			v.Counts.Unreachable++
		case badgePaused:
			v.Counts.Paused++
		default:
			v.Counts.NotConverged++
		}
		if !n.InState(q.State) {
			continue
		}
		v.Page.Matched++
		if v.Page.Matched <= skip || len(v.Rows) >= nodesPerPage {
			continue
		}
		row := nodeRow{Name: n.Name, Address: n.Address, State: state, Reason: n.Reason}
		for _, name := range v.Components {
			row.Cells = append(row.Cells, newCell(n, name))
		}
		v.Rows = append(v.Rows, row)
	}
	v.Page.State = q.State
	if len(v.Rows) > 0 {
		v.Page.First, v.Page.Last = skip+1, skip+len(v.Rows)
	}
	if q.Page > 1 {
		v.Page.Prev = pageURL(clusterQuery{State: q.State, Page: min(q.Page-1, max(1, (v.Page.Matched+nodesPerPage-1)/nodesPerPage))})
	}
	if skip+len(v.Rows) < v.Page.Matched {
		v.Page.Next = pageURL(clusterQuery{State: q.State, Page: q.Page + 1})
	}
	for _, f := range []struct{ label, state string }{{"all", ""}, {"not converged", plan.StateNotConverged}, {"unreachable", plan.StateUnreachable}, {"converged", plan.StateConverged}} {
		v.Page.Filters = append(v.Page.Filters, filterLink{Label: f.label, URL: pageURL(clusterQuery{State: f.state, Page: 1}), Current: f.state == q.State})
	}
	v.Plan, v.PlanKnown = newPlanNodes(p)
	return v
}

func newCell(n plan.NodeStatus, comp string) cell {
	c := cell{ID: "cell-" + n.Name + "-" + comp}
	i := slices.IndexFunc(n.Components, func(cs plan.ComponentStatus) bool { return cs.Name == comp })
	if i < 0 {
		c.Title = comp + " is not placed on " + n.Name
		return c
	}
	cs := n.Components[i]
	c.Placed = true
	c.Desired, c.Observed = orDash(cs.DesiredVersion), orDash(cs.ObservedVersion)
	if cs.DesiredVersion == "" {
		c.Desired = "absent"
	}
	c.Sync, c.Health = syncBadge(cs.Sync), healthBadge(cs.Health)
	c.Reason = cs.Reason
	c.Title = fmt.Sprintf("%s on %s: desired %s, observed %s, %s, %s", comp, n.Name, c.Desired, c.Observed, cs.Sync, cs.Health)
	if cs.Reason != "" {
		c.Title += " — " + cs.Reason
	}
	return c
}

func newRolloutView(r plan.RolloutStatus) rolloutView {
	v := rolloutView{Halted: r.Halted, HaltReason: r.Reason, Pending: r.Pending, Waiting: r.Waiting}
	if r.Component != "" && r.Node != "" {
		v.HaltWhere = r.Component + " on " + r.Node
	}
	for _, a := range r.InFlight {
		v.InFlight = append(v.InFlight, a.Node+": "+actionText(a))
	}
	v.Active = len(v.InFlight) > 0 || v.Pending > 0 || len(v.Waiting) > 0
	return v
}

func newPlanNodes(p plan.Plan) ([]planNode, bool) {
	var out []planNode
	known := false
	for _, np := range p.Nodes {
		known = known || np.Known
		pn := planNode{Node: np.Node, Known: np.Known, Reason: np.Reason, Paused: np.Paused, Changes: newChangeViews(np)}
		for _, a := range np.Actions {
			s := actionText(a)
			if a.Reason != "" {
				s += " (" + a.Reason + ")"
			}
			if a.Disruptive {
				s += " — restarts the service"
			}
			pn.Actions = append(pn.Actions, s)
		}
		if len(pn.Actions) > 0 || !np.Known {
			out = append(out, pn)
		}
	}
	return out, known
}

// actionText is e.g. "upgrade node-exporter 1.8.2 → 1.9.1".
func actionText(a plan.Action) string {
	s := string(a.Kind) + " " + a.Component
	switch {
	case a.From != "" && a.To != "" && a.From != a.To:
		s += " " + a.From + " → " + a.To
	case a.To != "":
		s += " " + a.To
	case a.From != "":
		s += " " + a.From
	}
	return s
}

type nodeView struct {
	Name          string
	Address       string
	State         badge
	Reason        string
	Roles         string
	Labels        []string
	Facts         *plan.NodeFacts
	FreeDisk      string
	LastProbe     string
	LastAttempt   string
	ProbeDuration string
	ProbeError    string
	LastConverged string
	Failures      int
	Generation    string
	InFlight      string
	Waiting       string
	Components    []componentRow
	Plan          []string
	Changes       []fileChangeView
	Suspended     bool
	PlanUnknown   bool // the node has not answered a probe: nothing is known to be pending
	Actions       []actionRow
}

type componentRow struct {
	Name       string
	Desired    string
	Observed   string
	Sync       badge
	Health     badge
	Reason     string
	Active     string
	Unit       string
	Leader     bool
	Receipt    bool
	SHA256     string
	SHAShort   string
	ConfigHash string
	UnitHash   string
	Generation string
	Installed  string
	Previous   string
}

type actionRow struct {
	Time      string
	Action    string
	Component string
	Version   string
	OK        bool
	Result    badge
	Duration  string
	Message   string
	Steps     []stepRow
}

// stepRow is one step of an action: "unpack  changed  0.7s".
type stepRow struct {
	Name, Result, Duration string
}

// newNodeView is the node named name, false when the status has none.
func newNodeView(st plan.ClusterStatus, p plan.Plan, name string) (nodeView, bool) {
	i := slices.IndexFunc(st.Nodes, func(n plan.NodeStatus) bool { return n.Name == name })
	if i < 0 {
		return nodeView{}, false
	}
	n := st.Nodes[i]
	v := nodeView{
		Name: n.Name, Address: n.Address, State: nodeBadge(n, st.Paused), Reason: n.Reason,
		Roles: strings.Join(n.Roles, ", "), Facts: n.Facts,
		LastProbe: clock(n.LastProbe), LastAttempt: clock(n.LastProbeAttempt), ProbeError: n.ProbeError,
		LastConverged: clock(n.LastConverged), Failures: n.ConsecutiveFailures, Generation: short(n.ObservedGeneration, 12),
		Waiting: n.Waiting, Suspended: st.Suspended,
	}
	if n.ProbeDuration > 0 {
		v.ProbeDuration = duration(n.ProbeDuration)
	}
	if n.Facts != nil && n.Facts.FreeBytes >= 0 {
		v.FreeDisk = bytesText(n.Facts.FreeBytes)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		v.Labels = append(v.Labels, k+"="+n.Labels[k])
	}
	if n.InFlight != nil {
		v.InFlight = actionText(*n.InFlight)
	}
	for _, c := range n.Components {
		row := componentRow{
			Name: c.Name, Desired: orDash(c.DesiredVersion), Observed: orDash(c.ObservedVersion),
			Sync: syncBadge(c.Sync), Health: healthBadge(c.Health), Reason: c.Reason,
			Active: orDash(c.Active), Unit: orDash(c.Unit), Leader: c.Leader,
		}
		if c.DesiredVersion == "" {
			row.Desired = "absent"
		}
		if r := c.Receipt; r != nil {
			row.Receipt = true
			row.SHA256, row.SHAShort = r.ArtifactSHA256, short(r.ArtifactSHA256, 12)
			row.ConfigHash, row.UnitHash = short(r.ConfigHash, 12), short(r.UnitHash, 12)
			row.Generation, row.Installed, row.Previous = short(r.Generation, 12), clock(r.Time), r.Previous
		}
		v.Components = append(v.Components, row)
	}
	for _, np := range p.Nodes {
		if np.Node != name {
			continue
		}
		pn, _ := newPlanNodes(plan.Plan{Nodes: []plan.NodePlan{np}})
		if len(pn) == 1 {
			v.Plan, v.Changes = pn[0].Actions, pn[0].Changes
		}
		v.PlanUnknown = !np.Known
	}
	// Newest first: the last action is what an operator looks for.
	for k := len(n.History) - 1; k >= 0; k-- {
		a := n.History[k]
		row := actionRow{
			Time: clock(a.Time), Action: a.Action, Component: a.Component, Version: a.Version,
			OK: a.Result == "success", Duration: duration(a.Duration), Message: a.Message,
		}
		for _, st := range a.Steps {
			row.Steps = append(row.Steps, stepRow{Name: st.Name, Result: st.Result, Duration: duration(st.Duration)})
		}
		row.Result = badge{"ok", "✓", "success"}
		if !row.OK {
			row.Result = badge{"bad", "✗", orDash(a.Result)}
		}
		v.Actions = append(v.Actions, row)
	}
	return v, true
}

// loadErrors splits a rejected manifest's error into its problems, one a
// line (manifests.InvalidError puts each on its own line).
func loadErrors(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// clock is a time for a page: UTC to the second, "never" for zero.
func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func duration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

func bytesText(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
