package execute

import "context"

// runRestart repairs a synced component whose unit is down or unhealthy:
// enable and restart the unit, wait for health. Nothing installed
// changes, so the receipt stays as it is.
func runRestart(ctx context.Context, e *Executor, j *job) error {
	return e.climb(ctx, j, ladder{
		service: j.haveUnitFile() || (j.want != nil && j.want.Unit != nil),
		health:  j.want != nil && j.want.Health != nil,
	})
}
