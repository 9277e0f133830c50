package daemonproc

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// WaitFor polls cond every 250ms until it holds, and fails the test when
// within is over first.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := poll(within, 250*time.Millisecond, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%v waiting for %s", err, what)
	}
}

// poll calls check every interval until it holds or errs; it errs itself
// when within is over.
func poll(within, interval time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", within)
		}
		time.Sleep(interval)
	}
}

// FreeAddr is a 127.0.0.1 address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
