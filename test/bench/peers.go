package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/test/harness"
)

// peerSSHOptions are the OpenSSH client options Ansible and pssh both
// use: the harness's key and known_hosts, strict host key checking, no
// agent or user config, and the key exchange and cipher that drover's
// x/crypto client negotiates with these sshd (curve25519-sha256,
// aes128-gcm). OpenSSH 9.2 would otherwise pick sntrup761x25519 and
// chacha20-poly1305, which cost both ends more CPU: the peers get the
// same crypto as drover, not a handicap.
func peerSSHOptions(c *harness.Cluster) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "IdentityFile=" + c.IdentityFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + c.KnownHostsFile,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UpdateHostKeys=no",
		"-o", "HostKeyAlgorithms=ssh-ed25519",
		"-o", "KexAlgorithms=curve25519-sha256",
		"-o", "Ciphers=aes128-gcm@openssh.com",
		"-o", "BatchMode=yes",
		"-o", fmt.Sprintf("ConnectTimeout=%d", int(connectTimeout.Seconds())),
		"-o", "LogLevel=ERROR",
	}
}

// multiplexOptions turn on OpenSSH connection sharing with sockets in dir.
func multiplexOptions(dir string) []string {
	return []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + filepath.Join(dir, "%C"), "-o", "ControlPersist=300s"}
}

// peerProbeScript reads on a node what drover's probe reads for the same
// components: each receipt, where the active link points, the sha256 and
// mode of every rendered file, and the result of the health check. It
// fails (so the peer reports the node failed) when anything is missing.
func peerProbeScript(comps []component) string {
	var b strings.Builder
	b.WriteString("set -e\ncd " + inventory.Quote(installRoot) + "\n")
	var files []string
	for _, c := range comps {
		fmt.Fprintf(&b, "printf 'component %%s\\n' %s\ncat receipts/%s.json\necho\nreadlink active/%s\n", c.Name, c.Name, c.Name)
		for _, f := range filePaths(c) {
			files = append(files, inventory.Quote(f))
		}
	}
	fmt.Fprintf(&b, "sha256sum %s\nstat -c '%%a %%n' %s\n", strings.Join(files, " "), strings.Join(files, " "))
	for _, c := range comps {
		if c.Health {
			fmt.Fprintf(&b, "if %s >/dev/null 2>&1; then echo 'health %s ok'; else echo 'health %s fail'; fi\n",
				inventory.Quote(filepath.Join(installRoot, "active", c.Name, "bin", c.Name)), c.Name, c.Name)
		}
	}
	return b.String()
}

// closeMasters asks every OpenSSH master listening in dir to exit, then
// kills by pid any that did not (masters are the bench's own processes:
// its peers started them). Nothing of a peer outlives its measurement.
func closeMasters(dir string) error {
	socks, _ := filepath.Glob(filepath.Join(dir, "*"))
	sem := make(chan struct{}, 16)
	done := make(chan struct{})
	for _, s := range socks {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			cmd := execQuiet("ssh", "-F", "/dev/null", "-o", "ControlPath="+s, "-O", "exit", "bench")
			_ = cmd.Run()
		}()
	}
	for range socks {
		<-done
	}
	// A master that missed the request dies with its socket's dir named
	// in its process title ("ssh: DIR/... [mux]").
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := procsMatching(dir + "/")
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if left = procsMatching(dir + "/"); len(left) > 0 {
				return fmt.Errorf("ssh masters still running: %v", left)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range socks {
		_ = os.Remove(s)
	}
	return nil
}

// procsMatching lists pids whose command line contains s.
func procsMatching(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}
