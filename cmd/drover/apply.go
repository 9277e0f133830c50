package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

func newApplyCommand() *cobra.Command {
	var file string
	var yes, verbose, dry bool
	var target targetFlags
	var grace, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--node GLOB|--limit GLOB] [--role R] [--component C] [--dry-run]",
		Short: "Converge the cluster to the manifest, then exit",
		Long: `apply shows the plan, asks for confirmation (unless --yes), then rolls it out
with the same rollout rules as the daemon: dependsOn order, roleOrder,
maxUnavailable batches, one quorum member at a time, health gates, and
rollback or halt on failure. It exits 0 only when the cluster converged.

--node (or --limit, repeatable, a glob) and --role limit the changes to
those nodes. The others are still probed and counted: a quorum member or a
node taking a maxUnavailable slot outside the limit holds back a change
inside it as it would in a full apply, and when the rules allow no change
at all apply refuses with the reason. apply then exits 0 when the limited
nodes converged.

--component (repeatable) changes only those components: the others'
actions are held, yet counted as pending work, so a targeted component
that dependsOn a held one with work left waits for it (apply refuses with
that reason), and removals wait as they would. apply then exits 0 when the
targeted components are Synced and Healthy on the targeted nodes.

--dry-run walks every action through the executor and prints each step it
would take ("would: ..."); nothing runs on a node.

--timeout bounds the whole run but the confirmation prompt: the probe
ends by then, so does the rollout (in-flight actions get --grace more),
and no command drover starts on a node may outlive it (the node kills it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			out := cmd.OutOrStdout()
			pctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			probeStart := time.Now()
			limited := len(target.nodes) > 0 || len(target.roles) > 0 || len(target.components) > 0
			targeted := d.Nodes
			if limited {
				if targeted, err = target.selectNodes(d); err != nil {
					return err
				}
				d = limitDesired(d, targeted, target.components)
			}
			// Every node is probed, inside the limit or not: the rollout
			// counts them all.
			full, obs := reconciler.PlanWithDiffs(pctx, pool, d, nil, l.Cluster.Spec.SSH.Concurrency)
			p := target.filterPlan(full, targeted)
			left := timeout - time.Since(probeStart)
			if err := writePlan(out, outputText, p); err != nil {
				return err
			}
			if limited {
				if err := limitRefusal(d, full, obs, targeted); err != nil {
					return err
				}
			}
			if dry {
				fmt.Fprintln(out, "\nDry run: every step apply would take, none run.")
				n, err := dryRun(pctx, out, pool, d, p, obs)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "\n%d action(s) walked; nothing was changed.\n", n)
				return nil
			}
			if p.Empty() && allKnown(p) {
				return nil
			}
			if !yes && !p.Empty() {
				if !confirm(cmd.InOrStdin(), out) {
					return errors.New("apply cancelled")
				}
			}
			// The prompt's wait is the operator's, not the nodes'.
			ctx, cancel := context.WithTimeout(cmd.Context(), left)
			defer cancel()
			progress := newProgress(out, countActions(p))
			ctrl := reconciler.NewController(reconciler.ControllerOptions{
				Runner: pool,
				Executor: &execute.Config{Runner: pool, InstallRoot: d.InstallRoot, Generation: d.Generation, Log: log,
					// The health gate is the rollout's healthTimeout, not ReconcileTimeout.
					HealthTimeout: d.Rollout.HealthTimeout},
				Log:     log,
				Workers: max(1, min(l.Cluster.Spec.SSH.Concurrency, len(d.Nodes))),
				// apply reports a stuck node rather than waiting minutes.
				BackoffBase: time.Second,
				BackoffMax:  4 * time.Second,
				WaitRetry:   time.Second,
				OnEvent:     progress.event,
				// Every command on a node gets a node-side deadline no
				// later than the run's own.
				ReconcileTimeout: max(left, time.Second),
			})
			ctrl.SetDesired(d)
			start := time.Now()
			err = ctrl.RunUntilSettled(ctx, grace)
			progress.finish()
			st := ctrl.Status()
			st.Nodes = slices.DeleteFunc(st.Nodes, func(n plan.NodeStatus) bool {
				return !slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == n.Name })
			})
			// The nodes outside the limit keep their pending actions by
			// design; the limited apply succeeded when its nodes converged.
			if limited && err != nil && !errors.Is(err, reconciler.ErrHalted) && targetedConverged(target.filterStatus(st.Nodes), targeted, target.components) {
				err = nil
			}
			converged := 0
			for _, n := range st.Nodes {
				if n.Converged {
					converged++
				}
			}
			if werr := writeRecap(out, buildRecap(st.Nodes, progress.doneBy, progress.failedBy)); werr != nil {
				return werr
			}
			fmt.Fprintf(out, "\n%d of %d nodes converged in %s; %d action(s) succeeded, %d failed.\n",
				converged, len(st.Nodes), time.Since(start).Round(100*time.Millisecond), progress.ok, progress.failed)
			return err
		},
	}
	addManifestFlag(cmd, &file)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking for confirmation")
	cmd.Flags().StringArrayVar(&target.nodes, "node", nil, "change only nodes matching this name or glob (repeatable); the others are counted, not changed")
	cmd.Flags().StringArrayVar(&target.nodes, "limit", nil, "the same as --node")
	cmd.Flags().StringArrayVar(&target.roles, "role", nil, "change only nodes with this role (repeatable)")
	cmd.Flags().StringArrayVar(&target.components, "component", nil, "change only this component (repeatable); the others' actions are held and counted, not run")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "walk every action through the executor, printing each step as \"would: …\", and change nothing")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	cmd.Flags().DurationVar(&grace, "grace", 2*time.Minute, "on Ctrl-C or at --timeout, how long in-flight actions may take to finish")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long the probe and the rollout may take in all")
	return cmd
}

func allKnown(p plan.Plan) bool {
	for _, n := range p.Nodes {
		if !n.Known {
			return false
		}
	}
	return true
}

func countActions(p plan.Plan) int {
	n := 0
	for _, np := range p.Nodes {
		n += len(np.Actions)
	}
	return n
}

func confirm(in io.Reader, out io.Writer) bool {
	fmt.Fprint(out, "\nApply these changes? Only 'yes' is accepted: ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

// progress prints one line per action as it starts and ends, and on a
// terminal a bar of finished actions against the plan's count.
type progress struct {
	mu         sync.Mutex
	out        io.Writer
	tty        bool
	total      int
	ok, failed int
	// doneBy and failedBy count the actions per node, for the recap.
	doneBy, failedBy map[string]int
	// tries counts the starts of each node's action on a component, so a
	// retry says which try it is; unknown is the last "unknown" probe
	// message per node, said once rather than at every probe.
	tries   map[string]int
	unknown map[string]string
}

func newProgress(out io.Writer, total int) *progress {
	f, isFile := out.(*os.File)
	return &progress{out: out, total: total, tty: isFile && isTerminal(f), doneBy: map[string]int{}, failedBy: map[string]int{},
		tries: map[string]int{}, unknown: map[string]string{}}
}

func (p *progress) event(e reconciler.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch e.Kind {
	case reconciler.EventActionStart:
		k := e.Node + "/" + e.Component
		p.tries[k]++
		line = fmt.Sprintf("%-12s %s ...", e.Node, e.Message)
		if n := p.tries[k]; n > 1 {
			line = fmt.Sprintf("%-12s %s (try %d) ...", e.Node, e.Message, n)
		}
	case reconciler.EventActionDone:
		p.ok++
		p.doneBy[e.Node]++
		line = fmt.Sprintf("%-12s %s: done in %s", e.Node, e.Message, e.Duration.Round(10*time.Millisecond))
	case reconciler.EventActionFailed:
		p.failed++
		p.failedBy[e.Node]++
		line = fmt.Sprintf("%-12s %s %s failed: %s", e.Node, e.Action.Kind, e.Component, e.Message)
	case reconciler.EventRollback:
		line = fmt.Sprintf("%-12s %s", e.Node, e.Message)
	case reconciler.EventHalt:
		line = "rollout halted: " + e.Message
	case reconciler.EventProbe:
		switch {
		case strings.HasPrefix(e.Message, "unknown") && p.unknown[e.Node] != e.Message:
			p.unknown[e.Node] = e.Message
			line = fmt.Sprintf("%-12s %s", e.Node, e.Message)
		case !strings.HasPrefix(e.Message, "unknown") && p.unknown[e.Node] != "":
			delete(p.unknown, e.Node)
			line = fmt.Sprintf("%-12s reachable again", e.Node)
		}
	}
	if line == "" {
		return
	}
	line = safetext.Line(line) // messages quote the node's stderr
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
	fmt.Fprintln(p.out, line)
	if p.tty {
		fmt.Fprint(p.out, p.bar())
	}
}

func (p *progress) bar() string {
	total := max(p.total, p.ok+p.failed, 1)
	const width = 30
	done := (p.ok + p.failed) * width / total
	return fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("=", done), strings.Repeat(" ", width-done), p.ok+p.failed, total)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
}
