package execute

import (
	"context"

	"github.com/drover-project/drover/probes"
)

// runInstall puts a component on a node that does not have it. A join
// runs preJoin on a member that stays first: a failing one leaves the
// node untouched.
func runInstall(ctx context.Context, e *Executor, j *job) error {
	if err := e.membershipHook(ctx, j); err != nil {
		return err
	}
	return e.deploy(ctx, j)
}

// deploy is install and upgrade: every step in order, each skipped on the
// node when its result is already there. The artifact is checked locally
// first, so a bad one fails before any node is touched; prune runs before
// the receipt so that it is retried if cut off; the receipt is last.
func (e *Executor) deploy(ctx context.Context, j *job) error {
	w := j.want
	if err := e.verifyLocalArtifact(w); err != nil {
		return err
	}
	st, err := e.inspectPackage(ctx, j)
	if err != nil {
		return err
	}
	l := ladder{service: w.Unit != nil, health: w.Health != nil}
	l.stage = append(l.stage, e.ensureDirs)
	if !st.complete {
		if !st.cached {
			l.stage = append(l.stage, e.fetchArtifact)
		}
		l.stage = append(l.stage, e.unpack)
	}
	// The rendered files go with the stage: a preStop hook may run a
	// script of the new version's ({{ .Dir }}/...).
	l.stage = append(l.stage, e.writeFiles)
	l.place = append(l.place, e.syncUnit, e.keepUnit, func(ctx context.Context, j *job) error {
		return e.switchActive(ctx, j, w.Version)
	})
	var r probes.Receipt
	l.record = []step{
		func(ctx context.Context, j *job) error {
			r = e.receiptFor(j)
			keepSHA := []string{j.artifactSHA()}
			if old := j.haveReceipt(); old != nil && old.Version == r.Previous {
				keepSHA = append(keepSHA, old.ArtifactSHA256)
			}
			return e.prune(ctx, j, []string{w.Version, r.Previous}, keepSHA)
		},
		func(ctx context.Context, j *job) error { return e.writeReceipt(ctx, j, r) },
	}
	return e.climb(ctx, j, l)
}
