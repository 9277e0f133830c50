package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// execQuiet is a command with no input or output.
func execQuiet(name string, args ...string) *exec.Cmd {
	return exec.Command(name, args...)
}

// peerCommand is a peer's process (ansible-playbook, parallel-ssh), with
// attr (the tools' cgroup) and a process group of its own: stopping a run
// kills the whole group, so no Ansible worker or ssh client of a stopped
// run keeps loading the machine during the next measurement.
func peerCommand(ctx context.Context, attr *syscall.SysProcAttr, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	a := &syscall.SysProcAttr{}
	if attr != nil {
		*a = *attr
	}
	a.Setpgid = true
	a.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = a
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// fileTail is the end of a file, for error messages.
func fileTail(p string, max int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func clipText(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
