package execute

import (
	"context"
	"errors"
	"fmt"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// runRollback returns a component to the version it had: switch the
// active link back (the version must still be complete on the node), put
// back the unit and the rendered files outside the version dir that the
// version kept (unit_keep.go, files_keep.go), restart, wait for health,
// rewrite the receipt. Files the failed change added outside stay; the
// receipt lists them, so a later change or remove finds them.
//
// The target is a.To, set by the rollout to the version the node ran
// before the failed upgrade. Without it: the receipt's version when the
// active link has moved away from it (the upgrade never wrote its
// receipt), else the receipt's Previous.
func runRollback(ctx context.Context, e *Executor, j *job) error {
	target := rollbackTarget(j)
	if target == "" {
		return errors.New("no previous version to roll back to")
	}
	if !manifests.IsVersion(target) {
		return fmt.Errorf("rollback version %q is not %s", target, manifests.VersionPattern)
	}
	l := ladder{
		place: []step{
			func(ctx context.Context, j *job) error { return e.switchActive(ctx, j, target) },
			func(ctx context.Context, j *job) error { return e.restoreFiles(ctx, j, target) },
		},
		service: j.haveUnitFile() || (j.want != nil && j.want.Unit != nil),
		health:  j.want != nil && j.want.Health != nil,
		record:  []step{func(ctx context.Context, j *job) error { return e.writeReceipt(ctx, j, e.rollbackReceipt(j, target)) }},
	}
	if l.service {
		// The failed change may have changed the unit too.
		l.place = append(l.place, func(ctx context.Context, j *job) error { return e.restoreUnit(ctx, j, target) })
	}
	return e.climb(ctx, j, l)
}

func rollbackTarget(j *job) string {
	if j.action.To != "" {
		return j.action.To
	}
	r := j.haveReceipt()
	if r == nil {
		return ""
	}
	if j.have.Active != "" && j.have.Active != r.Version {
		return r.Version
	}
	return r.Previous
}

// rollbackReceipt is the receipt of the version rolled back to: the old
// receipt again when it describes that version (a failed upgrade never
// replaced it), else what is known of it. Files lists everything any
// version wrote, so a later remove still finds them.
func (e *Executor) rollbackReceipt(j *job, target string) probes.Receipt {
	r := probes.Receipt{Component: j.name, Version: target, Generation: e.Generation}
	old := j.haveReceipt()
	switch {
	case old != nil && old.Version == target:
		r = *old
	case old != nil:
		r.ConfigHash, r.UnitHash, r.Generation = old.ConfigHash, old.UnitHash, old.Generation
	}
	r.Component, r.Version, r.Time = j.name, target, e.now().UTC()
	seen := map[string]bool{}
	var files []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	if old != nil {
		for _, p := range old.Files {
			add(p)
		}
	}
	if j.want != nil {
		for _, f := range j.want.Files {
			add(f.Path)
		}
	}
	r.Files = files
	return r
}
