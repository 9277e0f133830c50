package reconciler

import "context"

// Alive returns nil once it could take the controller's lock and its
// queue's, the two every pass and every status read go through; a
// controller wedged on either never answers and Alive returns ctx's
// error. The daemon feeds systemd's watchdog only while Alive answers,
// so a wedged controller gets the daemon restarted. (A pass that takes
// long, an action for minutes, holds neither lock while it waits.)
func (c *Controller) Alive(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		// Only whether the locks can be taken matters.
		c.mu.Lock()
		//lint:ignore SA2001 an empty section is the point
		c.mu.Unlock()
		c.queue.mu.Lock()
		//lint:ignore SA2001 an empty section is the point
		c.queue.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
