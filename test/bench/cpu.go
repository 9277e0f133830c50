package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter measures the CPU time a run costs, which the machine's other
// load does not change the way it changes wall time: the client side
// (this process, for drover in process, plus every process of the peers,
// which run in a cgroup of their own so that their ControlPersist masters
// count too) and the node side (the sshd and sessions of every node, in
// the harness's cgroup of the cluster).
type cpuMeter struct {
	nodes   string // the cluster's cgroup dir
	tools   string // the peers' cgroup dir, made by the meter
	toolsFD int
}

// cpuSnap is a reading of every counter.
type cpuSnap struct {
	self, tools, nodes time.Duration
}

// cpuCost is what one run cost.
type cpuCost struct {
	Client, Nodes time.Duration
}

func newCPUMeter(cluster string) (*cpuMeter, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	m := &cpuMeter{nodes: filepath.Join(root, "drover-test", cluster), toolsFD: -1}
	if _, err := os.Stat(filepath.Join(m.nodes, "cpu.stat")); err != nil {
		return nil, fmt.Errorf("cpu meter: nodes' cgroup: %w", err)
	}
	removeStaleToolCgroups(root)
	m.tools = filepath.Join(root, fmt.Sprintf("drover-bench-%d", os.Getpid()))
	if err := os.Mkdir(m.tools, 0o755); err != nil {
		return nil, fmt.Errorf("cpu meter: %w", err)
	}
	if m.toolsFD, err = syscall.Open(m.tools, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err != nil {
		os.Remove(m.tools)
		return nil, fmt.Errorf("cpu meter: %w", err)
	}
	return m, nil
}

// procAttr starts a peer's process in the tools' cgroup.
func (m *cpuMeter) procAttr() *syscall.SysProcAttr {
	if m == nil || m.toolsFD < 0 {
		return nil
	}
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: m.toolsFD}
}

func (m *cpuMeter) snap() cpuSnap {
	var s cpuSnap
	if m == nil {
		return s
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.tools, _ = cgroupUsage(m.tools)
	s.nodes, _ = cgroupUsage(m.nodes)
	return s
}

func (a cpuSnap) to(b cpuSnap) cpuCost {
	return cpuCost{Client: (b.self - a.self) + (b.tools - a.tools), Nodes: b.nodes - a.nodes}
}

// close removes the tools' cgroup; it must be empty (no master left).
func (m *cpuMeter) close() error {
	if m == nil {
		return nil
	}
	if m.toolsFD >= 0 {
		syscall.Close(m.toolsFD)
		m.toolsFD = -1
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = os.Remove(m.tools); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cpu meter: remove %s: %w (pids: %s)", m.tools, err, strings.TrimSpace(readString(filepath.Join(m.tools, "cgroup.procs"))))
}

// removeStaleToolCgroups removes the tools' cgroups of earlier benches
// that are gone (a killed bench cannot remove its own); a non-empty one
// is left alone (rmdir refuses it).
func removeStaleToolCgroups(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "drover-bench-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "drover-bench-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // that bench still runs
		}
		_ = os.Remove(d)
	}
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// cgroupUsage is usage_usec of a cgroup's cpu.stat.
func cgroupUsage(dir string) (time.Duration, error) {
	f, err := os.Open(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec")
}

// cgroup2Root is the cgroup2 mount point.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == "cgroup2" {
			return strings.ReplaceAll(pf[4], `\040`, " "), nil
		}
	}
	return "", errors.New("no cgroup2 mount")
}
