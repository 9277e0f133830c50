package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BootSystemd boots opts.N systemd nodes from the cached Debian image (built
// on first use) and returns once every node's sshd answers and systemd has
// finished starting up. On error nothing is left running.
func BootSystemd(ctx context.Context, opts Options) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	opts = opts.withDefaults(KindSystemd)
	if err := opts.validate(KindSystemd); err != nil {
		return nil, err
	}
	tools, err := lookTools("debootstrap", "systemd-nspawn", "unshare", "nsenter", "ssh", "sh")
	if err != nil {
		return nil, err
	}
	// nft is only needed by Cut; look it up now if present so Cut and cleanup use it.
	tools["nft"], _ = lookTool("nft")
	rootfs, err := ensureRootfs(ctx, opts, tools)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(ctx, KindSystemd, opts, tools)
	if err != nil {
		return nil, err
	}
	if err := c.bootSystemd(ctx, rootfs); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) bootSystemd(ctx context.Context, rootfs string) error {
	start := time.Now()
	hostKeys, err := c.prepareClient()
	if err != nil {
		return err
	}
	authorized, err := os.ReadFile(c.IdentityFile + ".pub")
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	for i := range c.Nodes {
		n := c.nodes[c.Nodes[i].Name]
		n.Root = filepath.Join(n.dir, "upper")
		c.Nodes[i].Root = n.Root
		n.rootfs = rootfs
		if err := writeNodeUpper(n, hostKeys[n.Name], string(authorized)); err != nil {
			return err
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startSystemdNode(ctx, c.nodes[node.Name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.opts.Logf("harness: %d systemd nodes up in %v (%s)", len(c.Nodes), time.Since(start).Round(time.Millisecond), c.Dir)
	return nil
}

// writeNodeUpper lays out what makes a node itself on top of the shared
// image: hostname, machine-id, host key, sshd listen address, root's key.
func writeNodeUpper(n *nodeState, hostKey keyPair, authorized string) error {
	up := n.Root
	mid := make([]byte, 16)
	if _, err := rand.Read(mid); err != nil {
		return fmt.Errorf("harness: machine-id: %w", err)
	}
	sshdConf := strings.Join([]string{
		"# Written by the drover test harness. First value wins in sshd, and this",
		"# file is included before the rest of sshd_config.",
		"ListenAddress " + hostPort(n.Address, n.Port),
		"HostKey /etc/ssh/ssh_host_ed25519_key",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UseDNS no",
		// Many parallel clients (tests run drover with high concurrency).
		"MaxStartups 200:30:500",
		"MaxSessions 100",
		"",
	}, "\n")
	files := []struct {
		rel  string
		mode os.FileMode
		data string
	}{
		{"etc/hostname", 0o644, n.Name + "\n"},
		// The node's own name resolves to its own address: Java and others
		// look the local hostname up at start.
		{"etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + n.Address + "\t" + n.Name + "\n"},
		{"etc/machine-id", 0o444, hex.EncodeToString(mid) + "\n"},
		{"etc/ssh/ssh_host_ed25519_key", 0o600, string(hostKey.private)},
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, hostKey.public + "\n"},
		{"etc/ssh/sshd_config.d/10-drover-test.conf", 0o644, sshdConf},
		{"root/.ssh/authorized_keys", 0o600, authorized},
	}
	for _, f := range files {
		p := filepath.Join(up, f.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("harness: node %s: %w", n.Name, err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("harness: node %s: %w", n.Name, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return fmt.Errorf("harness: node %s: %w", n.Name, err)
		}
	}
	if err := os.Chmod(filepath.Join(up, "root/.ssh"), 0o700); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	// The upper dir's own mode becomes the mode of the node's "/".
	if err := os.Chmod(up, 0o755); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	return nil
}

// startSystemdNode launches nspawn for one node in its own cgroup and waits
// until the node is ready.
func (c *Cluster) startSystemdNode(ctx context.Context, n *nodeState) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("harness: cluster %s is closed", c.Name)
	}
	// A previous boot's sub-cgroups (payload/, supervisor/) would be adopted
	// by the new container; start from empty ones.
	var procsFiles []string
	for _, cg := range n.cgroups {
		if err := removeCgroupTree(cg, 5*time.Second); err != nil {
			return err
		}
		if err := makeCgroup(cg); err != nil {
			return err
		}
		procsFiles = append(procsFiles, filepath.Join(cg, "cgroup.procs"))
	}
	// The shell moves itself into the node's cgroups and then becomes nspawn,
	// so nspawn starts inside them: with --keep-unit it builds the container's
	// payload tree under whatever cgroup it finds itself in.
	argv := []string{c.tools["sh"], "-c", `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit 125; shift; n=$((n-1)); done; exec "$@"`,
		"sh", strconv.Itoa(len(procsFiles))}
	argv = append(argv, procsFiles...)
	argv = append(argv, c.tools["systemd-nspawn"], "-q", "--register=no", "--keep-unit",
		"-D", n.rootfs, "--overlay="+n.rootfs+":"+n.Root+":/", "-M", n.Name, "--boot")
	p, err := c.spawn(spawnSpec{
		argv: argv,
		log:  filepath.Join(n.dir, "console.log"),
		// nspawn turns SIGTERM into an orderly poweroff of the container.
		deathSig: syscall.SIGTERM,
		cgroupFD: -1,
	})
	c.mu.Lock()
	if p != nil {
		n.proc = p
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.waitSystemdReady(ctx, n, p)
}

// waitSystemdReady waits for sshd to accept connections and then for systemd
// to finish starting up (`systemctl is-system-running --wait`), failing fast
// with the console log if nspawn exits.
func (c *Cluster) waitSystemdReady(ctx context.Context, n *nodeState, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.BootTimeout)
	defer cancel()
	console := filepath.Join(n.dir, "console.log")
	if err := waitTCP(ctx, n, p, c.opts.BootTimeout); err != nil {
		return fmt.Errorf("%w\nconsole of %s (%s):\n%s", err, n.Name, console, consoleTail(console, 3000))
	}
	out, err := c.Exec(ctx, n.Name, "systemctl is-system-running --wait; systemctl --failed --no-legend --plain")
	state := strings.TrimSpace(out)
	if err == nil && state == "running" {
		return nil
	}
	// is-system-running exits non-zero for "degraded"; say which units failed.
	return fmt.Errorf("harness: node %s did not reach state running: %q (err %v)\nconsole of %s (%s):\n%s",
		n.Name, state, err, n.Name, console, consoleTail(console, 3000))
}

// waitTCP waits until the node's sshd accepts TCP connections. A non-nil p is
// watched so a node that dies during boot fails at once.
func waitTCP(ctx context.Context, n *nodeState, p *proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := hostPort(n.Address, n.Port)
	var d net.Dialer
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("harness: node %s exited during boot: %v", n.Name, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: node %s: sshd on %s not up after %v: %w", n.Name, addr, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopNode asks nspawn for an orderly poweroff and falls back to cgroup.kill.
func (c *Cluster) stopNode(n *nodeState, timeout time.Duration) error {
	p := c.procOf(n)
	if p != nil && !p.exited() {
		if err := syscall.Kill(p.pid, syscall.SIGTERM); err == nil && p.wait(timeout) {
			return nil
		}
		c.opts.Logf("harness: node %s did not shut down within %v; killing it", n.Name, timeout)
	}
	if err := killCgroup(n.cgroups[0], 10*time.Second); err != nil {
		return err
	}
	if p != nil && !p.wait(10*time.Second) {
		return fmt.Errorf("harness: stop %s: nspawn %d not reaped", n.Name, p.pid)
	}
	return nil
}

// systemctlOnNode runs systemctl inside a node's namespaces from the host, so
// it works when the node's sshd is down.
func (c *Cluster) systemctlOnNode(n *nodeState, verb, unit string) error {
	pid, err := containerInit(n)
	if err != nil {
		return err
	}
	out, err := exec.Command(c.tools["nsenter"], "-t", strconv.Itoa(pid), "-m", "-u", "-i", "-p", "--",
		"systemctl", verb, unit).CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: systemctl %s %s on %s: %w: %s", verb, unit, n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// containerInit finds the node's PID 1 (systemd) as a host pid: the process
// in the node's cgroup whose pid in its own namespace is 1.
func containerInit(n *nodeState) (int, error) {
	for _, pid := range cgroupPids(n.cgroups[0]) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				f := strings.Fields(v)
				if len(f) >= 2 && f[len(f)-1] == "1" {
					return pid, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("harness: node %s is not running", n.Name)
}
