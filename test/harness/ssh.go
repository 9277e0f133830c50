package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SSHArgs returns the argv of the system ssh client up to the remote command,
// reaching the node strictly: only the harness key, only the harness
// known_hosts, no agent, no user config, no prompts.
func (c *Cluster) SSHArgs(name string) ([]string, error) {
	n, err := c.node(name)
	if err != nil {
		return nil, err
	}
	ssh := c.tools["ssh"]
	if ssh == "" {
		return nil, fmt.Errorf("harness: %w: ssh", ErrMissingTool)
	}
	secs := int((c.opts.ConnectTimeout + time.Second - 1) / time.Second)
	return []string{ssh,
		"-F", "/dev/null",
		"-i", c.IdentityFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + c.KnownHostsFile,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlgorithms=ssh-ed25519",
		// The default post-quantum kex costs the client ~4x the CPU of
		// curve25519; this is test plumbing, and hundreds run at once.
		"-o", "KexAlgorithms=curve25519-sha256",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=" + strconv.Itoa(secs),
		// A node cut mid-session fails the session in ~6s instead of hanging.
		"-o", "ServerAliveInterval=2",
		"-o", "ServerAliveCountMax=3",
		"-o", "ControlMaster=no",
		"-o", "ControlPath=none",
		"-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(n.Port),
		"-l", c.User,
		n.Address,
	}, nil
}

// Exec runs a shell command on a node through the system ssh client and
// returns its stdout. The error carries the exit status and stderr. ctx
// bounds the whole call, connection included.
func (c *Cluster) Exec(ctx context.Context, name, command string) (string, error) {
	args, err := c.SSHArgs(name)
	if err != nil {
		return "", err
	}
	args = append(args, "--", command)
	// Output goes to unlinked temp files, not pipes: with pipes Wait also
	// waits for EOF, and under heavy parallel Exec a sibling child between
	// fork and exec briefly holds a copy of another command's pipe, which on
	// a loaded machine outlasted any sane WaitDelay. ssh exiting is the end.
	stdout, err := unlinkedTemp()
	if err != nil {
		return "", err
	}
	defer stdout.Close()
	stderr, err := unlinkedTemp()
	if err != nil {
		return "", err
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	runErr := cmd.Run()
	out, _ := readAllFrom(stdout)
	if runErr != nil {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (%w)", ctx.Err(), runErr)
		}
		msg, _ := readAllFrom(stderr)
		return out, fmt.Errorf("harness: exec on %s: %w: %s", name, runErr, strings.TrimSpace(msg))
	}
	return out, nil
}

func unlinkedTemp() (*os.File, error) {
	f, err := os.CreateTemp("", "drover-exec-*")
	if err != nil {
		return nil, fmt.Errorf("harness: exec: %w", err)
	}
	_ = os.Remove(f.Name())
	return f, nil
}

func readAllFrom(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}
