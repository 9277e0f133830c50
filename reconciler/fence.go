package reconciler

import (
	"fmt"
)

// mayAct is the fence's answer before an action is admitted.
func (c *Controller) mayAct() error {
	if c.Fence == nil {
		return nil
	}
	if err := c.Fence.MayAct(); err != nil {
		return fmt.Errorf("no action starts: %w", err)
	}
	return nil
}
