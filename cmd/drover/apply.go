package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/reconciler"
)

func newApplyCommand() *cobra.Command {
	var file string
	var yes, verbose bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Converge the cluster to the manifest, then exit",
		Long: `apply shows the plan, asks for confirmation (unless --yes), then rolls it out
with the same rollout rules as the daemon: dependsOn order, roleOrder,
maxUnavailable batches, one quorum member at a time, health gates, and
rollback or halt on failure. It exits 0 only when the cluster converged.`,
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
			ctx := cmd.Context()
			plan, _ := reconciler.PlanWithDiffs(ctx, pool, d, l.Cluster.Spec.SSH.Concurrency)
			if err := writePlan(out, outputText, plan); err != nil {
				return err
			}
			if plan.Empty() && allKnown(plan) {
				return nil
			}
			if !yes && !plan.Empty() {
				if !confirm(cmd.InOrStdin(), out) {
					return errors.New("apply cancelled")
				}
			}
			progress := newProgress(out, countActions(plan))
			ctrl := reconciler.NewController(reconciler.ControllerOptions{
				Runner: pool,
				Executor: &reconciler.Executor{Runner: pool, InstallRoot: d.InstallRoot, Generation: d.Generation, Log: log,
					// The health gate is the rollout's healthTimeout, not ReconcileTimeout.
					HealthTimeout: d.Rollout.HealthTimeout},
				Log:     log,
				Workers: max(1, min(l.Cluster.Spec.SSH.Concurrency, len(d.Nodes))),
				// apply reports a stuck node rather than waiting minutes.
				BackoffBase: time.Second,
				BackoffMax:  4 * time.Second,
				WaitRetry:   time.Second,
				OnEvent:     progress.event,
			})
			ctrl.SetDesired(d)
			start := time.Now()
			err = ctrl.RunUntilSettled(ctx, grace)
			progress.finish()
			st := ctrl.Status()
			converged := 0
			for _, n := range st.Nodes {
				if n.Converged {
					converged++
				}
			}
			fmt.Fprintf(out, "\n%d of %d nodes converged in %s; %d action(s) succeeded, %d failed.\n",
				converged, len(st.Nodes), time.Since(start).Round(100*time.Millisecond), progress.ok, progress.failed)
			return err
		},
	}
	addManifestFlag(cmd, &file)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking for confirmation")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every SSH step")
	cmd.Flags().DurationVar(&grace, "grace", 2*time.Minute, "on Ctrl-C, how long in-flight actions may take to finish")
	return cmd
}

func allKnown(p reconciler.Plan) bool {
	for _, n := range p.Nodes {
		if !n.Known {
			return false
		}
	}
	return true
}

func countActions(p reconciler.Plan) int {
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
}

func newProgress(out io.Writer, total int) *progress {
	f, isFile := out.(*os.File)
	return &progress{out: out, total: total, tty: isFile && isTerminal(f)}
}

func (p *progress) event(e reconciler.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch e.Kind {
	case reconciler.EventActionStart:
		line = fmt.Sprintf("%-12s %s ...", e.Node, e.Message)
	case reconciler.EventActionDone:
		p.ok++
		line = fmt.Sprintf("%-12s %s: done in %s", e.Node, e.Message, e.Duration.Round(10*time.Millisecond))
	case reconciler.EventActionFailed:
		p.failed++
		line = fmt.Sprintf("%-12s %s %s failed: %s", e.Node, e.Action.Kind, e.Component, e.Message)
	case reconciler.EventRollback:
		line = fmt.Sprintf("%-12s %s", e.Node, e.Message)
	case reconciler.EventHalt:
		line = "rollout halted: " + e.Message
	case reconciler.EventProbe:
		if strings.HasPrefix(e.Message, "unknown") {
			line = fmt.Sprintf("%-12s %s", e.Node, e.Message)
		}
	}
	if line == "" {
		return
	}
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
