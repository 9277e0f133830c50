// Package inventory owns the node set and how drover reaches it: SSH
// settings, host-key checking and the SSH connection pool.
package inventory

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
)

// Target is one node as the transport sees it: its own settings, from
// the manifest's node (or role). Unset fields are resolved by the Pool
// from its Config, the operator's ssh_config and OpenSSH's defaults.
// Address may be an ssh_config Host alias.
type Target struct {
	Name    string
	Address string
	Port    int
	User    string
	// IdentityFiles and KnownHostsFile, when set, replace the cluster's.
	IdentityFiles  []string
	KnownHostsFile string
	// Jump, when non-nil, is the node's own chain of jump hosts,
	// outermost first, replacing the cluster's.
	Jump []Bastion
}

// HostPort is the address as given, port 22 when unset (no ssh_config).
func (t Target) HostPort() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(t.Address, strconv.Itoa(port))
}

// Result is what a remote command left behind. A non-zero ExitCode is not
// an error: callers decide what it means.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Runner runs privileged POSIX sh scripts on nodes. Implementations wrap
// the script for the login user (sudo -n for non-root), so callers never
// think about privilege. Scripts must be built only from validated names
// and Quote'd values.
type Runner interface {
	// Run runs script with sh on the node, feeding stdin (may be nil).
	// It returns an error only when the script could not be run to the
	// end (connection, auth, host key, timeout); use Reason to classify it.
	Run(ctx context.Context, t Target, script string, stdin io.Reader) (Result, error)
	// DialTCP opens a TCP connection from the node to addr (host:port),
	// used for tcp and http health checks so they run from the node.
	DialTCP(ctx context.Context, t Target, addr string) (net.Conn, error)
}

// Querier is a Runner that can also run short read-only scripts in a
// shell kept open on the node between calls (see Pool.Query). Probes use
// it when the Runner has it.
type Querier interface {
	Runner
	Query(ctx context.Context, t Target, prelude, script string) (Result, error)
}

// Transport failure kinds; errors returned by a Runner wrap one of them.
var (
	ErrUnreachable = errors.New("unreachable")
	ErrAuth        = errors.New("authentication failed")
	ErrHostKey     = errors.New("host key rejected")
	ErrTimeout     = errors.New("timeout")
	ErrSudo        = errors.New("sudo requires a password")
)

// Why a probe learnt nothing: what Reason gives, what an Unknown node
// reports, and every value of drover_probe_errors_total's reason label
// (docs/METRICS.md lists them; a test holds the two together).
const (
	ReasonUnreachable = "unreachable"
	ReasonAuth        = "auth"
	ReasonHostKey     = "hostkey"
	ReasonTimeout     = "timeout"
	ReasonSudo        = "sudo"
	// ReasonProbeError is anything else: the script failed or its output
	// did not parse.
	ReasonProbeError = "probe-error"
)

// Reasons lists every reason, in the order docs/METRICS.md gives them.
var Reasons = []string{ReasonUnreachable, ReasonAuth, ReasonHostKey, ReasonTimeout, ReasonSudo, ReasonProbeError}

// Reason classifies a transport error into the short reason drover
// reports for an Unknown node: unreachable, auth, hostkey, timeout, sudo,
// or probe-error for anything else.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrHostKey):
		return ReasonHostKey
	case errors.Is(err, ErrAuth):
		return ReasonAuth
	case errors.Is(err, ErrSudo):
		return ReasonSudo
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, ErrUnreachable):
		return ReasonUnreachable
	default:
		return ReasonProbeError
	}
}
