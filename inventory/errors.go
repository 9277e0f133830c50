package inventory

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// connectError names the node and classifies a dial or handshake error:
// refused, no route, reset or EOF is ErrUnreachable; a timeout is
// ErrTimeout; rejected credentials are ErrAuth. Anything else stays
// unclassified (probe-error).
func connectError(e *entry, step string, err error, handshake bool, timeout time.Duration) error {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		return fmt.Errorf("%s: %s: %w: %v", e.describe(), step, ErrUnreachable, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s: %s: %w after %s: %v", e.describe(), step, ErrTimeout, timeout, err)
	case handshake && strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return fmt.Errorf("%s: %s: %w: %v", e.describe(), step, ErrAuth, err)
	case isNetDown(err):
		return fmt.Errorf("%s: %s: %w: %v", e.describe(), step, ErrUnreachable, err)
	}
	return fmt.Errorf("%s: %s: %w", e.describe(), step, err)
}

// isNetDown reports errors that mean the peer or the path is gone.
func isNetDown(err error) bool {
	for _, target := range []error{
		io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENETDOWN, syscall.EPIPE, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// isBroken reports whether opening a channel failed because the
// connection itself is gone (as opposed to the server refusing it).
func isBroken(err error, c *conn) bool {
	return c.isDead() || isNetDown(err)
}
