package reconciler

import (
	"context"
	"testing"
	"time"
)

// TestControllerAlive: Alive answers while the controller's locks are
// free and times out while one is held forever.
func TestControllerAlive(t *testing.T) {
	c := NewController(ControllerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Alive(ctx); err != nil {
		t.Fatalf("idle controller: %v", err)
	}
	for name, m := range map[string]interface {
		Lock()
		Unlock()
	}{"controller": &c.mu, "queue": &c.queue.mu} {
		m.Lock()
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := c.Alive(short)
		cancel()
		m.Unlock()
		if err == nil {
			t.Errorf("Alive answered with the %s lock held", name)
		}
	}
}
