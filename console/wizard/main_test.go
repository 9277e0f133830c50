package wizard

import (
	"testing"

	"go.uber.org/goleak"
)

// Every connection, session and server a test starts must be gone when
// it ends: preflight starts a goroutine per node and must wait for all.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
