package execute

import (
	"errors"
	"fmt"
)

// Fence says whether this daemon may change nodes now. In a daemon that
// is one of several on etcd (package ha) it is the leader's term: once
// the lease is lost, MayAct says why, for good. Nil (one daemon alone)
// always may.
type Fence interface {
	MayAct() error
}

// ErrFenced is wrapped by a step that did not start because the fence
// was closed: the daemon no longer leads. Nothing on the node changed.
var ErrFenced = errors.New("not started: this daemon may not act")

// fenced is the fence's answer for the step about to run (nil: run it).
// It is asked at the one gate every script that changes a node passes
// (runStep and runBatch), so no call site can forget it.
func (e *Executor) fenced(what string) error {
	if e.Fence == nil {
		return nil
	}
	if err := e.Fence.MayAct(); err != nil {
		return fmt.Errorf("step %s: %w: %w", what, ErrFenced, err)
	}
	return nil
}
