package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// pssh runs Debian's parallel-ssh and parallel-scp (pssh 2.3) against a
// set of harness nodes with the node count as parallelism.
type pssh struct {
	dir   string
	hosts string
	cp    string // ControlPath dir for warm runs
	par   int
	opts  []string
	n     int
	attr  *syscall.SysProcAttr
}

func newPSSH(dir, cp string, c *harness.Cluster, nodes []harness.Node, attr *syscall.SysProcAttr) (*pssh, error) {
	p := &pssh{attr: attr, dir: dir, hosts: filepath.Join(dir, "hosts"), cp: cp, par: len(nodes), opts: peerSSHOptions(c), n: len(nodes)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s@%s:%d\n", c.User, n.Address, n.Port)
	}
	return p, os.WriteFile(p.hosts, []byte(b.String()), 0o644)
}

// ssh runs command on every node. Connections are shared through
// ControlPersist masters, as a user who wants speed configures ssh: the
// first run after coldStart makes them (cold), later runs reuse them
// (warm). Each node's stdout lands in out/<host>; every node must have
// exited 0 and printed want (if set).
func (p *pssh) ssh(ctx context.Context, command, want string) (time.Duration, error) {
	opts := append(append([]string{}, p.opts...), multiplexOptions(p.cp)...)
	out := filepath.Join(p.dir, "out")
	errs := filepath.Join(p.dir, "err")
	for _, d := range []string{out, errs} {
		if err := os.RemoveAll(d); err != nil {
			return 0, err
		}
	}
	args := []string{"-h", p.hosts, "-p", strconv.Itoa(p.par), "-t", "600", "-o", out, "-e", errs, "-x", strings.Join(opts, " "), command}
	d, err := p.run(ctx, "parallel-ssh", args)
	if err != nil {
		return d, err
	}
	if want == "" {
		return d, nil
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(files) != p.n {
		return d, fmt.Errorf("parallel-ssh: output of %d nodes, want %d", len(files), p.n)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return d, err
		}
		if !strings.Contains(string(b), want) {
			return d, fmt.Errorf("parallel-ssh: %s: no %q in %q", filepath.Base(f), want, b)
		}
	}
	return d, nil
}

// scp copies one local file to the same path on every node.
func (p *pssh) scp(ctx context.Context, local, remote string) (time.Duration, error) {
	opts := append(append([]string{}, p.opts...), multiplexOptions(p.cp)...)
	args := []string{"-h", p.hosts, "-p", strconv.Itoa(p.par), "-t", "600", "-e", filepath.Join(p.dir, "err"), "-x", strings.Join(opts, " "), local, remote}
	return p.run(ctx, "parallel-scp", args)
}

func (p *pssh) run(ctx context.Context, tool string, args []string) (time.Duration, error) {
	logPath := filepath.Join(p.dir, "last-run.log")
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	cmd := peerCommand(ctx, p.attr, tool, args...)
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s: %w\n%s%s", tool, err, fileTail(logPath, 1000), firstErrFile(filepath.Join(p.dir, "err")))
	}
	return d, nil
}

// firstErrFile quotes one node's stderr from pssh's -e dir, if any.
func firstErrFile(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return "\nstderr of " + filepath.Base(f) + ": " + clipText(string(b), 500)
		}
	}
	return ""
}

// coldStart closes the masters, so the next run connects anew.
func (p *pssh) coldStart() error { return closeMasters(p.cp) }

func (p *pssh) close() error { return closeMasters(p.cp) }
