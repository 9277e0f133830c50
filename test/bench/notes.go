package main

import (
	"fmt"
	"strings"
	"time"
)

// writeNotes ends the report: what bounds each target, with this run's
// own figures where the run measured them (marked "this run"), and what
// profiling on this machine found. The profiled findings are prose kept
// with the code that measures; `go run ./test/bench -cpuprofile-dir DIR`
// takes the profiles again: probe-cold.pprof and probe-warm.pprof (the
// largest probe round, in process), daemon-steady.pprof and
// daemon-heap.pprof (the daemon binary itself, run with --pprof, over a
// window after its measured one).
func (b *bench) writeNotes(w *strings.Builder) {
	r := b.res
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	cpus := max(r.Machine.CPUs, 1)
	p("## Profile notes\n\n")
	p("Figures marked *this run* are computed from the tables above. The rest was found on this machine while the bench was built (2026-11-25): ")
	p("CPU profiles from `go run ./test/bench -cpuprofile-dir DIR` and `perf record` on the daemon, system calls counted with `strace -c`, and processes started on a node counted with `strace -f -e trace=execve` on one light node's sshd.\n\n")

	// The largest probe round drover and pssh both ran, warm and cold.
	var warm, cold probeResult
	for _, pr := range r.Probe {
		if pr.Warm && pr.Drover.ok() && pr.Nodes >= warm.Nodes {
			warm = pr
		}
		if !pr.Warm && pr.Drover.ok() && pr.Nodes >= cold.Nodes {
			cold = pr
		}
	}
	perNode := func(d time.Duration, n int) time.Duration { return d / time.Duration(max(n, 1)) }

	p("**The nodes' CPU bounds every wall time here.** ")
	if r.Machine.Spawn > 0 {
		p("One fork+exec of /bin/true costs %s of CPU on this machine (*this run*), and every remote command of every tool starts processes on its node, on the same %d CPUs as the client. ", fmtDur(r.Machine.Spawn), cpus)
	}
	if warm.Nodes > 0 && warm.Drover.CPU.Nodes > 0 {
		p("A warm drover probe cost its node %s of CPU and drover itself %s (*this run*, %d nodes)", fmtDur(perNode(warm.Drover.CPU.Nodes, warm.Nodes)), fmtDur(perNode(warm.Drover.CPU.Client, warm.Nodes)), warm.Nodes)
		if cold.Nodes > 0 && cold.Drover.CPU.Nodes > 0 {
			p("; a cold one %s on the node, the handshake included (sshd forks and re-executes itself for every connection)", fmtDur(perNode(cold.Drover.CPU.Nodes, cold.Nodes)))
		}
		p(". ")
		warm500 := 500 * perNode(warm.Drover.CPU.Nodes, warm.Nodes) / time.Duration(cpus)
		p("A warm round of 500 nodes therefore needs at least %s of wall time on %d CPUs for the nodes' share alone, whatever the client does (target: 1 s)", fmtDur(warm500), cpus)
		if cold.Nodes > 0 && cold.Drover.CPU.Nodes > 0 {
			p(", a cold one %s (target: 5 s)", fmtDur(500*perNode(cold.Drover.CPU.Nodes, cold.Nodes)/time.Duration(cpus)))
		}
		p(". With nodes on machines of their own, each node pays its share on its own CPU and the round is bounded by the client: drover's CPU per probe above. ")
	}
	p("A warm drover probe runs in the node's resident shell (no new session, no login shell; docs/ARCHITECTURE.md) and starts `stat`, `sha256sum`, and for the exec health check `timeout` and the check itself; `df` runs on every tenth probe and `uname` once per shell, and receipts are read by the shell. ")
	p("A cold probe adds the connection (sshd forks and re-executes itself, then forks the session) and the shell's start. ")
	p("The peers' script for the same facts starts, per run, a new session with the login shell, `cat` and `readlink` per component, `sha256sum`, `stat` and the check. ")
	p("Before the resident shell and the cuts in the script (2026-11-25, same machine, one light node, quiet), a warm probe cost its node about 85 ms of CPU; since, about 30 ms.\n\n")

	if warm.Nodes > 0 && (warm.PSSH.ok() || warm.Ansible.ok()) {
		p("**Against the peers, the difference is the client.** Both drover and the peers pay the nodes' cost; on this machine the peers also pay, from the same CPUs, a client that is much heavier: ")
		var parts []string
		for _, x := range []struct {
			name string
			pr   probeResult
			s    func(probeResult) stats
		}{
			{"drover", warm, func(pr probeResult) stats { return pr.Drover }},
			{"parallel-ssh", warm, func(pr probeResult) stats { return pr.PSSH }},
			{"Ansible", b.largestWith(true, func(pr probeResult) stats { return pr.Ansible }), func(pr probeResult) stats { return pr.Ansible }},
		} {
			if s := x.s(x.pr); s.ok() && s.CPU.Client > 0 {
				parts = append(parts, fmt.Sprintf("%s %s of client CPU and %s of node CPU per warm probe (%d nodes)", x.name, fmtDur(perNode(s.CPU.Client, x.pr.Nodes)), fmtDur(perNode(s.CPU.Nodes, x.pr.Nodes)), x.pr.Nodes))
			}
		}
		p("%s (*this run*). ", strings.Join(parts, "; "))
		p("parallel-ssh runs an OpenSSH client per node (plus its mux client of the ControlPersist master when warm) under a Python process; Ansible a Python worker per host that builds and sends a module. ")
		p("So in wall time on shared CPUs the ratio to parallel-ssh is capped near (its client + its nodes) ÷ (drover's nodes), which the nodes' process creation keeps low; ")
		p("the *client CPU* ratios in the probe tables are what the bootstrap host pays when the nodes are real machines.\n\n")
	}

	for _, cr := range r.Converge {
		if !cr.Drover.ok() || cr.Drover.CPU.Nodes == 0 {
			continue
		}
		p("**Converge.** Installing the component cost each node %s of CPU with drover", fmtDur(perNode(cr.Drover.CPU.Nodes, cr.Nodes)))
		if cr.PSSH.ok() && cr.PSSH.CPU.Nodes > 0 {
			p(", %s with parallel-ssh", fmtDur(perNode(cr.PSSH.CPU.Nodes, cr.Nodes)))
		}
		if cr.Ansible.ok() && cr.Ansible.CPU.Nodes > 0 {
			p(" and %s (plus %s of client CPU per node) with Ansible", fmtDur(perNode(cr.Ansible.CPU.Nodes, cr.Nodes)), fmtDur(perNode(cr.Ansible.CPU.Client, cr.Nodes)))
		}
		p(" (*this run*, %d nodes; the drover figure's floor on %d CPUs is %s against its median of %s). ", cr.Nodes, cpus, b.floor(cr.Drover), fmtDur(cr.Drover.Median))
		p("A drover install is 2 SSH sessions beside the probes in the resident shell: the read-only inspect, then its 7 steps (ensure dirs, upload artifact, unpack, write files, switch active, prune, write receipt) in one session, each step in a subshell with its own stdin (reconciler/stepchain.go); ")
		p("each step's script takes the node lock with `flock` and checks before it acts, `sync`s what it wrote before renaming it into place, and the upload is checked with `sha256sum` on the node. parallel-ssh's install is 3 sessions and syncs nothing; Ansible runs a Python interpreter on the node for each of its 6 tasks. ")
		p("Every tool pays the same upload (sshd decrypting 20 MiB into a pipe) and the same unpack.\n\n")
		break
	}

	if s := r.Steady; s != nil && s.Window > 0 && s.Probes > 0 {
		perProbe := time.Duration(float64(s.CPU) / s.Probes)
		budget := time.Duration(0.02 * float64(s.Interval) / 500)
		p("**Daemon steady state.** The daemon used %s of CPU per probe over the window, keepalives and everything else included (*this run*, %d nodes); ", fmtDur(perProbe), s.Nodes)
		p("at 500 nodes and a %s interval the 2%% target allows %s per probe. ", s.Interval, fmtDur(budget))
		if n := s.nominalPercent(); n > s.cpuPercent()*1.1 {
			p("The nodes, on the same CPUs as everything else, answered only %.1f probes per node in the window where one per interval is %.1f (a probe waits for its node, and the next one is scheduled an interval after it ends), so the measured %.2f%% is at a lower rate than the daemon aims at: at one probe per node per interval it would be about %.1f%%. ", s.Probes/float64(s.Nodes), s.Window.Seconds()/s.Interval.Seconds(), s.cpuPercent(), n)
		}
		p("What a probe costs the daemon is wake-ups, not drover's logic. `perf record` on the daemon over 200 nodes (2026-11-25) put a third of its CPU in the kernel switching tasks (pvm_irq_enable under finish_task_switch: this VM pays dearly for each switch), half of that for the Go runtime's sysmon thread, which the daemon wakes each time it leaves idle and which then sleeps 20 µs at a time until the daemon is idle again; the daemon's own code (parse, diff, status) was a few per cent. ")
		p("So a probe wakes the daemon as few times as it can. Probes due in the same second start together (reconciler/queue.go rounds waits of 2 s or more up to a whole second: one timer wake-up a second at 500 nodes instead of 17). The request is one TCP write: the probe script's function definitions (6.6 KB) go once per resident shell (`inventory.Pool.Query`'s prelude), so a probe sends under 1 KB where 7.7 KB took two writes through x/crypto/ssh's 4 KB buffer. The answer is one packet: the script's lines and the end marker go out in one printf, and its stderr is kept in a file on the node and sent only when there is some, where a second marker on stderr had cost a packet per probe. ")
		p("Over 200 nodes, 2-minute windows one after the other on this machine (2026-11-25): 1.89 ms per probe before these changes (1-minute window), 1.78 ms with one packet each way, 1.41 ms with the coalesced timers too, 1.16 ms with fewer allocations per answer (one buffer instead of an 8 KB chunk plus copies). ")
		p("Earlier changes did the same: the probe runs in a shell kept open on the connection (no session to open and close per probe), and keepalives go out only while a command waits on a quiet connection (they were 7%% of the daemon's CPU at one per probe interval). ")
		p("And it runs with one P (`drover daemon --cpus`, default 1): with more, each packet that readies a goroutine may wake a second thread to run it. Over 100 nodes one P used 39%% less CPU than two (0.93 against 1.52 CPU s per minute, 2-minute windows, before the changes above). ")
		p("Memory is far under its target: peak RSS %.1f MB for %d connections.\n\n", mb(s.PeakRSS), s.Nodes)
	}

	if re := r.Reaction; re != nil && re.Total.ok() {
		p("**Reaction.** The manifest was loaded %s after the write (fsnotify, a 100 ms debounce, parse, validate, compile) and the first action started %s after the write (*this run*, medians). ", fmtDur(re.Load.Median), fmtDur(re.Total.Median))
		p("In between: SetDesired queues every node, and the first pass over a node after an edit plans from its last probe when that is recent and nothing ran on the node since (reconciler/controller.go, lastProbe), so the action is admitted and starts without waiting for a probe of the node; the pass after the action probes. ")
		p("Before that change the first action waited for a probe and took 1.10 s here under load (2026-11-25); the debounce is now most of what is left.\n")
	}
}

// largestWith is the largest probe row (warm or cold) where get measured
// the peer.
func (b *bench) largestWith(warm bool, get func(probeResult) stats) probeResult {
	var best probeResult
	for _, pr := range b.res.Probe {
		if pr.Warm == warm && get(pr).ok() && pr.Nodes >= best.Nodes {
			best = pr
		}
	}
	return best
}
