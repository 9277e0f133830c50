package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine is what the report says about where it ran.
type machine struct {
	CPUs     int
	Model    string
	MemoryGB float64
	Kernel   string
	Go       string
	OS       string
	Ansible  string
	PSSH     string
	OpenSSH  string
	// Spawn is the CPU time one fork+exec of /bin/true costs here (child
	// side, median of 50): every remote command of every tool pays it on
	// the node, many times.
	Spawn time.Duration
}

func describeMachine(ctx context.Context) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGB = kb / (1 << 20)
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.Ansible = firstLine(ctx, "ansible", "--version")
	if v := firstLine(ctx, "parallel-ssh", "--version"); v != "" {
		m.PSSH = "parallel-ssh " + v
	}
	m.OpenSSH = firstLine(ctx, "ssh", "-V")
	m.Spawn = spawnCost(ctx)
	return m
}

// spawnCost is the median CPU time (user+system) of running /bin/true.
func spawnCost(ctx context.Context) time.Duration {
	var ds []time.Duration
	for range 50 {
		cmd := exec.CommandContext(ctx, "/bin/true")
		if cmd.Run() != nil {
			return 0
		}
		ds = append(ds, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	return summarise(ds).Median
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// firstLine is the first line a command prints (stdout or stderr), or "".
func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}
