package execute

import "context"

// runInstall puts a component on a node that does not have it.
func runInstall(ctx context.Context, e *Executor, j *job) error {
	return e.deploy(ctx, j)
}

// deploy is install and upgrade: every step in order, each skipped on the
// node when its result is already there. The artifact is checked locally
// first, so a bad one fails before any node is touched; prune runs before
// the receipt so that it is retried if cut off; the receipt is last.
// Steps with nothing to decide between them run in one session
// (stepchain.go): all of them for a component without a service or a
// health check, else those before the restart and those after the
// health gate.
func (e *Executor) deploy(ctx context.Context, j *job) error {
	w := j.want
	if err := e.verifyLocalArtifact(w); err != nil {
		return err
	}
	st, err := e.inspectPackage(ctx, j)
	if err != nil {
		return err
	}
	j.startBatch()
	defer j.dropBatch()
	if err := e.ensureDirs(ctx, j); err != nil {
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
	if w.Unit != nil || w.Health != nil {
		// The restart's failure means an unhealthy component, and the
		// gate waits on what the steps before it did: both run now.
		if err := e.endBatch(ctx, j); err != nil {
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
		j.startBatch()
	}
	r := e.receiptFor(j)
	keepSHA := []string{j.artifactSHA()}
	if old := j.haveReceipt(); old != nil && old.Version == r.Previous {
		keepSHA = append(keepSHA, old.ArtifactSHA256)
	}
	if err := e.prune(ctx, j, []string{w.Version, r.Previous}, keepSHA); err != nil {
		return err
	}
	if err := e.writeReceipt(ctx, j, r); err != nil {
		return err
	}
	return e.endBatch(ctx, j)
}
