package main

import (
	"fmt"
	"slices"
	"time"
)

// stats summarises repeated runs of one measurement.
type stats struct {
	N                int
	Median, Min, Max time.Duration
	// Planned is how many runs the policy asked for; fewer successful
	// runs than that are shown with the figure.
	Planned int
	// Failed counts runs that did not finish correctly; they are not in
	// the other fields.
	Failed int
	// Exceeded is set when a run was stopped at -peer-timeout: the
	// measurement takes longer than that (a lower bound).
	Exceeded time.Duration
	// StopAt is the limit the measurement's runs had (0: none).
	StopAt time.Duration
	// Skipped: not measured at this size on purpose (see the flags).
	Skipped bool
	// Err is the first failure, for the report.
	Err string
	// CPU is the median CPU time of a run: the tool's processes (client)
	// and the nodes' sshd and sessions (nodes).
	CPU cpuCost
}

// medianCPU is the median client and node CPU of the runs, each taken
// on its own.
func medianCPU(costs []cpuCost) cpuCost {
	var cl, nd []time.Duration
	for _, c := range costs {
		cl = append(cl, c.Client)
		nd = append(nd, c.Nodes)
	}
	return cpuCost{Client: summarise(cl).Median, Nodes: summarise(nd).Median}
}

// cpuCell is the report's "client + nodes" CPU text.
func (s stats) cpuCell() string {
	if !s.ok() || s.CPU.Client+s.CPU.Nodes == 0 {
		return "—"
	}
	return fmt.Sprintf("%s + %s", fmtDur(s.CPU.Client), fmtDur(s.CPU.Nodes))
}

func summarise(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{N: len(s), Median: med, Min: s[0], Max: s[len(s)-1]}
}

// ok reports whether at least one run succeeded.
func (s stats) ok() bool { return s.N > 0 }

// cell is the report's "median (min–max)" text.
func (s stats) cell() string {
	switch {
	case s.Skipped:
		return "not run"
	case !s.ok() && s.Exceeded > 0:
		return fmt.Sprintf("> %s (stopped)", fmtDur(s.Exceeded))
	case !s.ok() && s.Err != "":
		return "failed"
	case !s.ok():
		return "—"
	}
	out := fmt.Sprintf("%s (%s–%s)", fmtDur(s.Median), fmtDur(s.Min), fmtDur(s.Max))
	if s.N == 1 {
		out = fmtDur(s.Median)
	}
	if s.N < s.Planned && s.Failed == 0 {
		out += fmt.Sprintf(" [%d of %d runs: budget]", s.N, s.Planned)
	}
	if s.Failed > 0 {
		out += fmt.Sprintf(" [%d failed]", s.Failed)
	}
	if s.Exceeded > 0 {
		out += fmt.Sprintf(" [then a run stopped at %s]", fmtDur(s.Exceeded))
	}
	return out
}

// fmtDur prints a duration with three significant digits in ms or s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// fmtWall prints a long wall time as minutes and seconds ("42 min 7 s").
func fmtWall(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmtDur(d)
	}
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// ratio is how many times slower peer is than drover ("12.3x"), by
// medians; "> 5.2x" when the peer's run was stopped (a lower bound).
func ratio(peer, drover stats) string {
	v := ratioValue(peer, drover)
	if v == 0 {
		return "—"
	}
	prefix := ""
	if !peer.ok() {
		prefix = "> "
	}
	if v >= 10 {
		return fmt.Sprintf("%s%.0fx", prefix, v)
	}
	return fmt.Sprintf("%s%.1fx", prefix, v)
}

// ratioValue is ratio as a number (a lower bound for a stopped peer),
// 0 when unknown.
func ratioValue(peer, drover stats) float64 {
	if !drover.ok() || drover.Median <= 0 {
		return 0
	}
	switch {
	case peer.ok():
		return float64(peer.Median) / float64(drover.Median)
	case peer.Exceeded > 0:
		return float64(peer.Exceeded) / float64(drover.Median)
	}
	return 0
}
