// Package daemonproc runs real subprocesses for end-to-end tests: the
// built `drover daemon` (Start, Daemon) and anything else a test serves
// beside it, such as Prometheus (StartProc, Proc).
//
// Every process gets its own process group, writes its output to a log
// file, and is ended by its pid alone (SIGTERM, then SIGKILL after a
// grace) in the test's cleanup, so that none outlives its test; a killed
// test binary takes it along through a parent-death signal. When the test
// failed, the cleanup logs the tail of the process's log.
package daemonproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ProcOptions say what to run and how to end it.
type ProcOptions struct {
	Name    string // in messages: "daemon", "prometheus"
	Path    string // the executable
	Args    []string
	LogPath string // receives stdout and stderr; required
	// StopAfter is how long Stop waits after SIGTERM before SIGKILL;
	// default 30s.
	StopAfter time.Duration
	// TailLines is how much of the log a failed test shows; default 40.
	TailLines int
}

// Proc is one running subprocess of a test.
type Proc struct {
	t    testing.TB
	opts ProcOptions
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// StartProc starts the process and registers its stop with t.Cleanup.
func StartProc(t testing.TB, opts ProcOptions) *Proc {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "process"
	}
	if opts.StopAfter == 0 {
		opts.StopAfter = 30 * time.Second
	}
	if opts.TailLines == 0 {
		opts.TailLines = 40
	}
	if opts.LogPath == "" {
		t.Fatalf("daemonproc: %s: no log path", opts.Name)
	}
	logFile, err := os.Create(opts.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p := &Proc{t: t, opts: opts, done: make(chan struct{})}
	p.cmd = exec.Command(opts.Path, opts.Args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// Its own group keeps a terminal's Ctrl-C to `go test` from reaching
	// it behind the test's back; the parent-death signal ends it when the
	// test binary is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", opts.Name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s (last lines):\n%s", opts.Name, opts.LogPath, p.Tail(opts.TailLines))
		}
		p.Stop()
	})
	return p
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file that holds the process's output.
func (p *Proc) LogPath() string { return p.opts.LogPath }

// Signal sends sig to the process (its pid, not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop ends the process by its pid: SIGTERM, then SIGKILL if it has not
// exited after StopAfter, which fails the test. It returns at once if the
// process has exited.
func (p *Proc) Stop() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.opts.StopAfter):
		p.t.Errorf("%s pid %d ignored SIGTERM for %v; killing it", p.opts.Name, p.Pid(), p.opts.StopAfter)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill is a power cut: SIGKILL, and wait for the process to be gone.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("kill %s: %v", p.opts.Name, err)
	}
	<-p.done
}

// ExitedWithin waits up to within for the process to exit, and returns
// its exit code and whether it exited.
func (p *Proc) ExitedWithin(within time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(within):
		return 0, false
	}
}

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Tail is the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.opts.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// errExited is what a wait ends with when the process died under it.
var errExited = errors.New("exited")

// WaitUntil polls ready every 100ms until it holds; it fails the test, with
// the log's tail, when the process exits first or within is over.
func (p *Proc) WaitUntil(within time.Duration, what string, ready func() bool) {
	p.t.Helper()
	err := poll(within, 100*time.Millisecond, func() (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("%w: %v", errExited, p.err)
		}
		return ready(), nil
	})
	switch {
	case errors.Is(err, errExited):
		p.t.Fatalf("%s %v while waiting for %s\n%s", p.opts.Name, err, what, p.Tail(20))
	case err != nil:
		p.t.Fatalf("%s: %v waiting for %s\n%s", p.opts.Name, err, what, p.Tail(20))
	}
}
