package execute

import (
	"context"
	"fmt"
)

// runRemove takes a component off a node: stop and disable the unit,
// delete the unit file (daemon-reload), the active link, every version
// dir, the rendered files the receipt lists, the cached artifacts no
// other receipt uses, and finally the receipt. Until the receipt is gone
// the probe still finds the component, so a cut-off remove runs again.
// Nothing is decided between the steps: they share one session.
//
// A leave first stops the unit (preStop), then runs postLeave on a member
// that stays; if postLeave fails the unit is started again, so the group
// keeps the member it still lists.
func runRemove(ctx context.Context, e *Executor, j *job) error {
	if j.member != nil {
		if err := e.stopUnit(ctx, j); err != nil {
			return err
		}
		if err := e.runBatch(ctx, j); err != nil {
			return err
		}
		j.stopped = true
		if err := e.membershipHook(ctx, j); err != nil {
			if serr := e.startUnit(ctx, j); serr != nil {
				return fmt.Errorf("%w; starting it again: %w", err, serr)
			}
			return err
		}
	}
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
