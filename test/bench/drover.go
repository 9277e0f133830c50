package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

// droverCluster is a compiled bench manifest, driven in process the way
// the CLI drives it (cmd/drover: probe, plan, apply).
type droverCluster struct {
	loaded  *manifests.Loaded
	desired *plan.Desired
	cfg     inventory.Config
	log     *zap.Logger
}

func loadDrover(p string, log *zap.Logger) (*droverCluster, error) {
	l, err := manifests.Load(p)
	if err != nil {
		return nil, err
	}
	d, err := plan.Compile(l)
	if err != nil {
		return nil, err
	}
	cfg, err := inventory.ConfigFromManifest(l.Cluster.Spec.SSH)
	if err != nil {
		return nil, err
	}
	return &droverCluster{loaded: l, desired: d, cfg: cfg, log: log}, nil
}

// concurrency is the manifest's ssh.concurrency (defaults applied).
func (dc *droverCluster) concurrency() int { return dc.loaded.Cluster.Spec.SSH.Concurrency }

func (dc *droverCluster) newPool() (*inventory.Pool, error) {
	return inventory.NewPool(dc.cfg, dc.log.Named("ssh"))
}

// probeRound is one probe of every node, as `drover probe` and each
// round of the daemon do it. Every node must be probed and in sync: a
// round that measured failures would measure the wrong thing.
func (dc *droverCluster) probeRound(ctx context.Context, pool *inventory.Pool) error {
	return checkConverged(reconciler.ProbeAndDiff(ctx, pool, dc.desired, dc.concurrency()))
}

// coldProbe is a probe round from nothing: a new pool (keys, known_hosts)
// and a new connection to every node, as `drover probe` makes.
func (dc *droverCluster) coldProbe(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	pool, err := dc.newPool()
	if err != nil {
		return 0, err
	}
	err = dc.probeRound(ctx, pool)
	d := time.Since(start)
	pool.Close()
	return d, err
}

// apply is `drover apply -y` (cmd/drover/apply.go) in process: a new pool,
// a probe round for the plan, and unless there is nothing to do, the
// controller with apply's settings run until the cluster settles.
func (dc *droverCluster) apply(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	pool, err := dc.newPool()
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	d := dc.desired
	plan := reconciler.ProbeAndDiff(ctx, pool, d, dc.concurrency())
	if plan.Empty() && checkConverged(plan) == nil {
		return time.Since(start), nil
	}
	ctrl := reconciler.NewController(reconciler.ControllerOptions{
		Runner:      pool,
		Executor:    &execute.Config{Runner: pool, InstallRoot: d.InstallRoot, Generation: d.Generation, Log: dc.log.Named("executor")},
		Log:         dc.log.Named("reconciler"),
		Workers:     max(1, min(dc.concurrency(), len(d.Nodes))),
		BackoffBase: time.Second,
		BackoffMax:  4 * time.Second,
		WaitRetry:   time.Second,
	})
	ctrl.SetDesired(d)
	// nil means every node converged. (Status() after it returns is not
	// used: a probe cut short by the controller's shutdown can leave a
	// node Unknown there.) Callers check the nodes themselves.
	err = ctrl.RunUntilSettled(ctx, time.Minute)
	elapsed := time.Since(start)
	if err != nil {
		return elapsed, fmt.Errorf("apply: %w", err)
	}
	return elapsed, nil
}

// checkConverged fails unless every node was probed and has nothing to do.
func checkConverged(p plan.Plan) error {
	var bad []string
	for _, n := range p.Nodes {
		switch {
		case !n.Known:
			bad = append(bad, fmt.Sprintf("%s: unknown: %s", n.Node, n.Reason))
		case len(n.Actions) > 0:
			bad = append(bad, fmt.Sprintf("%s: %d action(s) pending (%s)", n.Node, len(n.Actions), n.Actions[0].Describe()))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	total := len(bad)
	if total > 5 {
		bad = append(bad[:5], fmt.Sprintf("... and %d more", total-5))
	}
	return fmt.Errorf("%d node(s) not in sync:\n  %s", total, strings.Join(bad, "\n  "))
}
