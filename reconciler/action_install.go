package reconciler

import "context"

// runInstall puts a component on a node that does not have it.
func runInstall(ctx context.Context, e *Executor, j *job) error {
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
	if err := e.ensureDirs(ctx, j); err != nil {
		return err
	}
	st, err := e.inspectPackage(ctx, j)
	if err != nil {
		return err
	}
	if !st.complete {
		if !st.cached {
			if err := e.fetchArtifact(ctx, j); err != nil {
				return err
			}
		}
		if err := e.unpack(ctx, j); err != nil {
			return err
		}
	}
	if err := e.writeFiles(ctx, j); err != nil {
		return err
	}
	if err := e.syncUnit(ctx, j); err != nil {
		return err
	}
	if err := e.keepUnit(ctx, j); err != nil {
		return err
	}
	if err := e.switchActive(ctx, j, w.Version); err != nil {
		return err
	}
	if w.Unit != nil {
		if err := e.restartUnit(ctx, j); err != nil {
			return err
		}
	}
	if err := e.waitHealthy(ctx, j, w.Unit != nil, w.Health != nil); err != nil {
		return err
	}
	r := e.receiptFor(j)
	keepSHA := []string{j.artifactSHA()}
	if old := j.haveReceipt(); old != nil && old.Version == r.Previous {
		keepSHA = append(keepSHA, old.ArtifactSHA256)
	}
	if err := e.prune(ctx, j, []string{w.Version, r.Previous}, keepSHA); err != nil {
		return err
	}
	return e.writeReceipt(ctx, j, r)
}
