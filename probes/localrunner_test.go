package probes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/drover-project/drover/inventory"
)

// localRunner is a test-only inventory.Runner: the "node" is this machine,
// the script runs under a real shell in a temp dir, and DialTCP dials from
// here. It exercises the real probe script without SSH.
type localRunner struct {
	shell []string // argv before the script, e.g. {"dash", "-c"}
	dir   string
	env   []string // appended to the environment (PATH=... wins)
}

var _ inventory.Runner = (*localRunner)(nil)

func newLocalRunner(t *testing.T, shell ...string) *localRunner {
	t.Helper()
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return &localRunner{shell: shell, dir: t.TempDir()}
}

func (l *localRunner) Run(ctx context.Context, _ inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	cmd := exec.CommandContext(ctx, l.shell[0], append(append([]string{}, l.shell[1:]...), script)...)
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), l.env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return inventory.Result{}, errors.Join(inventory.ErrTimeout, ctx.Err())
	}
	res := inventory.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return inventory.Result{}, err
	}
	return res, nil
}

func (l *localRunner) DialTCP(ctx context.Context, _ inventory.Target, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
