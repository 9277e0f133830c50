package manifests

import "sync/atomic"

// CountRuns counts template executions until stop is called, for tests
// outside the package (manifests_test).
func CountRuns() (runs func() int64, stop func()) {
	var n atomic.Int64
	testHookRun = func() { n.Add(1) }
	return n.Load, func() { testHookRun = nil }
}
