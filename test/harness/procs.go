package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process the harness started and waits for.
type proc struct {
	pid  int
	done chan struct{} // closed when the process has been reaped
	err  error         // exit status; read only after done is closed
}

// exited tells whether the process has been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to be reaped.
func (p *proc) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// spawnSpec says how to start one long-running node process.
type spawnSpec struct {
	argv []string
	log  string // stdout and stderr are appended here (the node's console log)
	// cgroupFD, when >= 0, is an open v2 cgroup dir: the child is born in it
	// (clone3 CLONE_INTO_CGROUP), so nothing it does escapes cgroup.kill.
	cgroupFD  int
	deathSig  syscall.Signal
	extraEnvs []string
}

// spawn starts a node process, records its pid in Dir/pids and reaps it in a
// goroutine tracked by c.wg.
//
// The goroutine locks its OS thread for the child's whole life: Linux sends
// the parent-death signal when the *thread* that forked the child exits, and
// the Go runtime may retire an unlocked thread at any time. Holding the thread
// makes the signal mean "the harness process died", which is what we want:
// a killed `go test` takes its nodes down instead of leaving them running.
func (c *Cluster) spawn(s spawnSpec) (*proc, error) {
	logf, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("harness: open log: %w", err)
	}
	p := &proc{done: make(chan struct{})}
	started := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(p.done)
		runtime.LockOSThread()
		// Never unlocked: when this goroutine returns the thread exits with it,
		// after the child is already reaped.
		cmd := exec.Command(s.argv[0], s.argv[1:]...)
		cmd.Stdout = logf
		cmd.Stderr = logf
		cmd.Env = append(os.Environ(), s.extraEnvs...)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			// Own process group: a Ctrl-C aimed at the harness must not reach
			// the nodes directly; the harness tears them down in order.
			Setpgid:   true,
			Pdeathsig: s.deathSig,
		}
		if s.cgroupFD >= 0 {
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = s.cgroupFD
		}
		err := cmd.Start()
		logf.Close()
		if err != nil {
			p.err = err
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		// The record lets a later run reap this process if we die without
		// Close. A death between Start and this write leaves the process
		// unrecorded; its cgroup still names it (stale cgroups are killed whole).
		rec := filepath.Join(c.Dir, "pids", strconv.Itoa(p.pid))
		started <- os.WriteFile(rec, []byte(strings.Join(s.argv, "\x00")), 0o644)
		p.err = cmd.Wait()
		// Reaped: the pid may be reused from now on, so forget it.
		_ = os.Remove(rec)
	}()
	if err := <-started; err != nil {
		if p.pid != 0 {
			return p, fmt.Errorf("harness: record pid of %s: %w", s.argv[0], err)
		}
		return nil, fmt.Errorf("harness: start %s: %w", s.argv[0], err)
	}
	return p, nil
}

// readCmdline returns /proc/PID/cmdline with NULs as spaces ("" if gone).
func readCmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(bytes.TrimRight(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), " "))
}

// procStartTime is field 22 of /proc/PID/stat: with the pid it names one
// process for the life of the machine, so a reused pid is not mistaken for it.
func procStartTime(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// comm (field 2) may hold spaces and parens; fields restart after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// procInfo is one process found by scanProcs.
type procInfo struct {
	PID     int
	Cmdline string
}

// scanProcs lists live processes whose cmdline satisfies match. Zombies have an
// empty cmdline and are skipped: they hold nothing and are their parent's to reap.
func scanProcs(match func(cmdline string) bool) []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cl := readCmdline(pid)
		if cl != "" && match(cl) {
			out = append(out, procInfo{PID: pid, Cmdline: cl})
		}
	}
	return out
}

// killRecorded SIGKILLs every process recorded under dir/pids whose cmdline
// still mentions marker (so a reused pid is never killed), and removes the
// records.
func killRecorded(dir, marker string) {
	ents, err := os.ReadDir(filepath.Join(dir, "pids"))
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.Contains(readCmdline(pid), marker) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.Remove(filepath.Join(dir, "pids", e.Name()))
	}
}

// recordedAlive returns the recorded pids that are still alive and still
// ours (cmdline mentions marker).
func recordedAlive(dir, marker string) []procInfo {
	ents, err := os.ReadDir(filepath.Join(dir, "pids"))
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cl := readCmdline(pid); strings.Contains(cl, marker) {
			out = append(out, procInfo{PID: pid, Cmdline: cl})
		}
	}
	return out
}

// removeTree deletes a directory tree, first detaching anything mounted
// beneath it so RemoveAll never walks into a mounted /proc, /sys or overlay
// that a killed debootstrap or nspawn left behind.
func removeTree(dir string) error {
	if dir == "" || dir == "/" {
		return errors.New("harness: refusing to remove " + strconv.Quote(dir))
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if mnt, _, _, ok := parseMountinfoLine(line); ok && (mnt == dir || strings.HasPrefix(mnt, dir+"/")) {
				mounts = append(mounts, mnt)
			}
		}
		// Deepest first.
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	err = os.RemoveAll(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("harness: remove %s: %w", dir, err)
	}
	return nil
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
