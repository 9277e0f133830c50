package execute

import "context"

// runRemove takes a component off a node: stop and disable the unit,
// delete the unit file (daemon-reload), the active link, every version
// dir, the rendered files the receipt lists, the cached artifacts no
// other receipt uses, and finally the receipt. Until the receipt is gone
// the probe still finds the component, so a cut-off remove runs again.
// Nothing is decided between the steps: they share one session.
func runRemove(ctx context.Context, e *Executor, j *job) error {
	if err := e.hook(ctx, j, "preRemove"); err != nil {
		return err
	}
	j.startBatch()
	defer j.dropBatch()
	for _, step := range []func(context.Context, *job) error{
		e.stopUnit,
		e.deleteUnit,
		e.deletePackage,
		e.pruneCacheOf,
		e.deleteReceipt,
	} {
		if err := step(ctx, j); err != nil {
			return err
		}
	}
	return e.endBatch(ctx, j)
}
