package execute

import (
	"context"

	"github.com/drover-project/drover/manifests"
)

// ladder is one action's steps as data. Every action that changes a node
// climbs the same ladder: the steps that put things in place, then what
// the service needs (a restart, a reload or nothing), the health gate,
// and the steps that record the result. An action kind (action_*.go)
// says only which steps go on each rung; climb owns the order, the gate
// and the sessions: steps with nothing to decide between them share one
// (stepchain.go), so the stage and place rungs run as one session (two
// when a preStop hook drains the service between them), the record rung
// as another, and all as one when there is neither a service to touch
// nor a check to wait for.
type ladder struct {
	// stage prepares the new version beside the running one: unpacked,
	// its files rendered (those outside the version dir too, so they are
	// the one thing a failing drain leaves changed).
	stage []step
	// place switches the running service over: its unit, the active
	// link (and, for a reconfigure, its files). A restart drains the
	// service first (preStop), so a failing drain leaves the service as
	// it was, and a crash restart cannot start the new version outside
	// the rollout.
	place []step
	// service: the component runs a unit, which effect touches and the
	// gate watches.
	service bool
	// effect is what the unit needs once the place rung is done: a
	// manifests.OnChange value, "" for a restart.
	effect string
	// health: the gate waits for the component's health check.
	health bool
	record []step
}

// step is one rung's step: a script run through the gate (steprun.go).
type step func(ctx context.Context, j *job) error

// climb runs l's steps in order; the first failure ends the action.
func (e *Executor) climb(ctx context.Context, j *job, l ladder) error {
	j.startBatch()
	defer j.dropBatch()
	restart := l.service && l.effect != manifests.OnChangeNone && l.effect != manifests.OnChangeReload
	if err := runSteps(ctx, j, l.stage); err != nil {
		return err
	}
	if restart {
		if err := e.drain(ctx, j); err != nil {
			return err
		}
	}
	if err := runSteps(ctx, j, l.place); err != nil {
		return err
	}
	if l.service || l.health {
		// The restart's failure means an unhealthy component, and the
		// gate waits on what the steps before it did: both run now.
		if err := e.endBatch(ctx, j); err != nil {
			return err
		}
		var err error
		switch {
		case restart:
			err = e.restartUnit(ctx, j)
		case l.service && l.effect == manifests.OnChangeReload:
			err = e.reloadUnit(ctx, j)
		}
		if err != nil {
			return err
		}
		if err := e.waitHealthy(ctx, j, l.service, l.health); err != nil {
			return err
		}
		j.startBatch()
	}
	if err := runSteps(ctx, j, l.record); err != nil {
		return err
	}
	return e.endBatch(ctx, j)
}

// runSteps runs steps in order; the first failure ends them.
func runSteps(ctx context.Context, j *job, steps []step) error {
	for _, s := range steps {
		if err := s(ctx, j); err != nil {
			return err
		}
	}
	return nil
}
