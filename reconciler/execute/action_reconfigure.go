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
// deleted it), the files have nowhere to go: it deploys instead.
func runReconfigure(ctx context.Context, e *Executor, j *job) error {
	w := j.want
	if j.have == nil || !j.have.Packages[w.Version] {
		j.log.Info("version dir not complete on the node, deploying it", zap.String("version", w.Version))
		return e.deploy(ctx, j)
	}
	l := ladder{
		place:   []step{e.writeFiles, e.syncUnit, e.keepUnit},
		service: w.Unit != nil,
		// The changed files' onChange says what the service needs (the
		// plan's Effect). A drover upgrade that only moves the
		// environment out of the unit leaves the running service alone:
		// it has that environment already.
		effect: j.action.Effect,
		health: w.Health != nil,
		record: []step{func(ctx context.Context, j *job) error { return e.writeReceipt(ctx, j, e.receiptFor(j)) }},
	}
	if plan.EnvMigrates(w, j.have) {
		l.effect = manifests.OnChangeNone
	}
	return e.climb(ctx, j, l)
}
