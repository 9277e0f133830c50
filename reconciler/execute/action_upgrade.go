package execute

import "context"

// runUpgrade moves a component to a new version (or a new artifact under
// the same version). It is install's sequence: the new version is
// unpacked beside the old one, the active link switched, the unit
// restarted and the health gate passed; only then are versions older than
// the previous one pruned and the receipt, recording the previous version
// for rollback, written.
func runUpgrade(ctx context.Context, e *Executor, j *job) error {
	return e.deploy(ctx, j)
}
