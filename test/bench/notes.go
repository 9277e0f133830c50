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
// daemon-heap.pprof (the daemon's loop run in process over the
// steady-state nodes after the binary's own measurement).
func (b *bench) writeNotes(w *strings.Builder) {
	r := b.res
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	cpus := max(r.Machine.CPUs, 1)
	p("## Profile notes\n\n")
	p("Figures marked *this run* are computed from the tables above. The rest was found on this machine while the bench was built (2026-11-25): ")
	p("CPU profiles from `go run ./test/bench -cpuprofile-dir DIR`, and processes started on a node counted with `strace -f -e trace=execve` on one light node's sshd.\n\n")

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
	p("A drover probe starts about ten processes on its node: the login shell, `sh`, `uname`, `df`, `stat`, `sha256sum`, one `base64` per receipt, and for the exec health check a subshell, `timeout` and the check itself; ")
	p("the peers' script for the same facts starts eight (the login shell, `cat` and `readlink` per component, `sha256sum`, `stat`, the check). ")
	p("Fewer processes per probe would lower the floor: OS facts (`uname`, `df`) only on a connection's first probe, and every receipt read by one process, would take three or four of the ten away. ")
	p("That changes the probe's output contract (probes/script.go, parse.go), so it is left to the probes package, not done by the bench.\n\n")

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
		p("One drover install runs 11 SSH sessions on its node (the plan's probe, the 8 steps ensure dirs, inspect package, upload artifact, unpack, write files, switch active, prune, write receipt, and the re-probes) and about 105 processes: ")
		p("each step's script takes the node lock with `flock` and checks before it acts (`stat`, `sha256sum`, `mkdir`, `rm`, `mv`, `sync`, `chmod`). parallel-ssh's install is 3 sessions and about 25 processes; Ansible runs a Python interpreter on the node for each of its 6 tasks. ")
		p("Every tool pays the same upload (sshd decrypting 20 MiB into a pipe) and the same unpack. ")
		p("Running an action's steps as one script in one session (the same checks and the same mutation gate, reconciler/steps.go and executor.go) would remove most of drover's extra node cost; it is the executor owner's change, not the bench's.\n\n")
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
		p("Profiled in process over 100 nodes for two minutes, about a third of the daemon's CPU is the Go scheduler waking threads for network events (findRunnable, futex, epoll), ")
		p("a quarter x/crypto/ssh reading packets (readLoop, AES-GCM, read syscalls) and under a tenth writing them; drover's own code is small: probes.Parse 3%%, probes.Script 2.5%%, receipts' JSON 1.5%%, keepalives 2.5%% directly. ")
		p("One probe is one SSH session: about a dozen packets each way (channel open and confirmation, exec, window adjusts, output, exit status, EOF, close), each a syscall and a goroutine hand-off; ")
		p("with keepalives every 15 s (inventory.DefaultKeepAlive) each connection also exchanges two keepalives per 30 s probe. That per-session cost, not drover's logic, is what a probe costs the daemon. ")
		p("The one large lever found: the same daemon with `GOMAXPROCS=1` in its environment used 39%% less CPU (0.93 against 1.52 CPU s per minute over 100 nodes, one 2-minute window each, ")
		p("`GOMAXPROCS=1 go run ./test/bench -only steady -steady-nodes 100 -steady 2m -no-peers`; the bench passes its environment to the daemon): with one P, a packet's hand-off between goroutines wakes no other thread. ")
		p("Setting it (or a smaller GOMAXPROCS) in `drover daemon` is a change to cmd/drover/daemon.go; even so, about %s per probe would stay above the target's budget. ", fmtDur(perProbe*61/100))
		p("Memory is far under its target: peak RSS %.1f MB for %d connections.\n\n", mb(s.PeakRSS), s.Nodes)
	}

	if re := r.Reaction; re != nil && re.Total.ok() {
		p("**Reaction.** The manifest was loaded %s after the write (fsnotify, a 100 ms debounce, parse, validate, compile) and the first action started %s after it (*this run*, medians). ", fmtDur(re.Load.Median), fmtDur(re.Total.Median))
		p("The rest is the node's reconcile, which is level-triggered: SetDesired queues every node and each worker probes its node before it diffs and admits the action, ")
		p("so the first action waits for a probe, whose ten processes on the node wait their turn on CPUs shared with every other process here (see the load table). ")
		p("A change that would take the probe out of that path: on a new generation, plan from each node's last probe when it is recent and start the action at once (every step checks the node before it acts, so a stale view costs a no-op step, never a wrong change), then re-probe as now. ")
		p("It changes the controller's contract (reconciler/controller.go), so it is not done by the bench.\n")
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
