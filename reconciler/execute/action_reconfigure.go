package execute

import (
	"context"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"

	"go.uber.org/zap"
)

// runReconfigure rewrites the rendered files and the unit that differ,
// restarts the unit (unless only the environment moves out of it:
// EnvMigrates) and waits for health, then writes the receipt. The
// version stays. If the version dir is not complete on the node (someone
// deleted it), the files have nowhere to go: it deploys instead. The
// steps before the restart share one session.
func runReconfigure(ctx context.Context, e *Executor, j *job) error {
	w := j.want
	if j.have == nil || !j.have.Packages[w.Version] {
		j.log.Info("version dir not complete on the node, deploying it", zap.String("version", w.Version))
		return e.deploy(ctx, j)
	}
	j.startBatch()
	defer j.dropBatch()
	if err := e.writeFiles(ctx, j); err != nil {
		return err
	}
	if err := e.syncUnit(ctx, j); err != nil {
		return err
	}
	if err := e.keepUnit(ctx, j); err != nil {
		return err
	}
	if err := e.endBatch(ctx, j); err != nil {
		return err
	}
	// A drover upgrade that only moves the environment out of the unit
	// leaves the running service alone: it has that environment already.
	// Otherwise the changed files' onChange says what the service needs
	// (the plan's Effect): a restart, a reload, or nothing.
	if w.Unit != nil && !plan.EnvMigrates(w, j.have) {
		var err error
		switch j.action.Effect {
		case manifests.OnChangeNone:
		case manifests.OnChangeReload:
			err = e.reloadUnit(ctx, j)
		default:
			err = e.restartUnit(ctx, j)
		}
		if err != nil {
			return err
		}
	}
	if err := e.waitHealthy(ctx, j, w.Unit != nil, w.Health != nil); err != nil {
		return err
	}
	return e.writeReceipt(ctx, j, e.receiptFor(j))
}
