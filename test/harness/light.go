package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BootLight starts opts.N light nodes and returns once every node's sshd
// accepts connections. On error nothing is left running.
func BootLight(ctx context.Context, opts Options) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	opts = opts.withDefaults(KindLight)
	if err := opts.validate(KindLight); err != nil {
		return nil, err
	}
	tools, err := lookTools("sshd", "unshare", "ssh", "sh")
	if err != nil {
		return nil, err
	}
	tools["nft"], _ = lookTool("nft")
	// Per node: a listening socket and a log in sshd, plus in the harness a
	// cgroup dir fd at start and pipes of every concurrent Exec.
	if err := ensureNofile(uint64(4*opts.N + 1024)); err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege-separation dir; a host
	// where the ssh service never ran lacks it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	// The bind-mount target must exist on the host; it stays empty there.
	if err := os.MkdirAll(opts.InstallRoot, 0o755); err != nil {
		return nil, fmt.Errorf("harness: install root: %w", err)
	}
	// Light nodes log in as the harness's user (root) of the host; its home
	// gets hidden per node (see startLightNode).
	u, err := user.Current()
	if err != nil || !filepath.IsAbs(u.HomeDir) || u.HomeDir == "/" {
		return nil, fmt.Errorf("harness: home of the current user: %q, %v", u.HomeDir, err)
	}
	c, err := newCluster(ctx, KindLight, opts, tools)
	if err != nil {
		return nil, err
	}
	c.home = u.HomeDir
	if err := c.bootLight(ctx); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) bootLight(ctx context.Context) error {
	start := time.Now()
	hostKeys, err := c.prepareClient()
	if err != nil {
		return err
	}
	for i := range c.Nodes {
		n := c.nodes[c.Nodes[i].Name]
		n.Root = filepath.Join(n.dir, "root")
		c.Nodes[i].Root = n.Root
		if err := c.writeLightNode(n, hostKeys[n.Name]); err != nil {
			return err
		}
	}
	// sshd start is CPU-bound (key load, config parse); a few at a time keeps
	// a 2-core machine responsive while hundreds start.
	sem := make(chan struct{}, 16)
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, node := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.startLightNode(ctx, c.nodes[node.Name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.opts.Logf("harness: %d light nodes up in %v (%s)", len(c.Nodes), time.Since(start).Round(time.Millisecond), c.Dir)
	return nil
}

// writeLightNode writes a node's dir: host key, sshd config, install root.
func (c *Cluster) writeLightNode(n *nodeState, hostKey keyPair) error {
	if err := os.MkdirAll(n.Root, 0o755); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(filepath.Join(n.dir, "home"), 0o700); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "authorized_keys"), nil, 0o600); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	keyPath := filepath.Join(n.dir, "ssh_host_ed25519_key")
	if err := hostKey.write(keyPath); err != nil {
		return err
	}
	conf := strings.Join([]string{
		"# Written by the drover test harness; sshd reads only this file (-f).",
		"ListenAddress " + hostPort(n.Address, n.Port),
		"HostKey " + keyPath,
		// The cluster's client key, then keys for this node alone (AuthorizeKey).
		"AuthorizedKeysFile " + filepath.Join(c.Dir, "authorized_keys") + " " + filepath.Join(n.dir, "authorized_keys"),
		// No pid file: nodes must not fight over /run/sshd.pid; the harness
		// tracks pids itself. No PAM: no login sessions for hundreds of
		// logins, and PAM's account checks are not what these nodes test.
		"PidFile none",
		"UsePAM no",
		// The key files live in the harness's state dir, not in ~/.ssh.
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		// Hundreds of clients may connect to one node at once (scale tests).
		"MaxStartups 1000",
		"MaxSessions 1000",
		"Subsystem sftp internal-sftp",
		"LogLevel ERROR",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(n.dir, "sshd_config"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("harness: node %s: %w", n.Name, err)
	}
	return nil
}

// startLightNode starts a node's sshd in its cgroup and mount namespace and
// waits until it accepts connections.
func (c *Cluster) startLightNode(ctx context.Context, n *nodeState) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("harness: cluster %s is closed", c.Name)
	}
	cg := n.cgroups[0]
	// A fresh cgroup for every start unless sessions survive in the old one
	// (StopSSHD keeps them). On this kernel (6.18) a child cloned with
	// CLONE_INTO_CGROUP into a cgroup that was ever cgroup.kill'ed is killed
	// at birth, so a cgroup that saw Kill must not be reused.
	if _, err := os.Stat(cg); err == nil && !cgroupPopulated(cg) {
		if err := removeCgroupTree(cg, 5*time.Second); err != nil {
			return err
		}
	}
	if err := makeCgroup(cg); err != nil {
		return err
	}
	fd, err := syscall.Open(cg, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("harness: open cgroup %s: %w", cg, err)
	}
	defer syscall.Close(fd)
	// unshare execs the shell in a new mount namespace with private
	// propagation; the shell binds the node's dir over the install root and
	// an empty home over root's, visible to this sshd and its sessions only,
	// then becomes sshd (same pid, so the recorded pid is sshd's). The home
	// bind keeps the host user's dotfiles out: a .bashrc that runs pyenv or
	// nvm costs ~1 s of CPU per ssh command, which 100 parallel clients on a
	// small machine turn into minutes.
	argv := []string{c.tools["unshare"], "--mount", "--propagation", "private", "--",
		c.tools["sh"], "-c", `mount --bind "$1" "$2" && mount --bind "$3" "$4" || exit 125; shift 4; exec "$@"`, "sh",
		n.Root, c.opts.InstallRoot, filepath.Join(n.dir, "home"), c.home,
		c.tools["sshd"], "-D", "-e", "-f", filepath.Join(n.dir, "sshd_config"),
	}
	p, err := c.spawn(spawnSpec{
		argv:     argv,
		log:      filepath.Join(n.dir, "sshd.log"),
		cgroupFD: fd,
		deathSig: syscall.SIGKILL,
	})
	c.mu.Lock()
	if p != nil {
		n.proc = p
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, n, p, c.opts.BootTimeout); err != nil {
		log := filepath.Join(n.dir, "sshd.log")
		return fmt.Errorf("%w\nlog of %s (%s):\n%s", err, n.Name, log, consoleTail(log, 2000))
	}
	return nil
}

// ensureNofile raises RLIMIT_NOFILE to at least want, up to what root may
// set (fs.nr_open). Children get Go's saved original soft limit back.
func ensureNofile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("harness: getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		lim.Max = want
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("harness: raise open-file limit to %d: %w", want, err)
	}
	return nil
}

// AuthorizeKey lets the public key (an authorized_keys line) log in to
// the light node name only, beside the cluster's client key: tests of
// per-node and per-hop keys give each node a key no other accepts.
func (c *Cluster) AuthorizeKey(name, authorizedKey string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if c.Kind != KindLight {
		return fmt.Errorf("harness: AuthorizeKey: node %s is not a light node", name)
	}
	f, err := os.OpenFile(filepath.Join(n.dir, "authorized_keys"), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("harness: node %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.TrimSpace(authorizedKey) + "\n"); err != nil {
		return fmt.Errorf("harness: node %s: %w", name, err)
	}
	return nil
}

// KnownHostsLine is name's line of KnownHostsFile, for a test that gives
// each node a known_hosts file of its own.
func (c *Cluster) KnownHostsLine(name string) (string, error) {
	n, err := c.node(name)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(c.KnownHostsFile)
	if err != nil {
		return "", err
	}
	prefix := "[" + n.Address + "]:" + strconv.Itoa(n.Port) + " "
	if n.Port == 22 {
		prefix = n.Address + " "
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line, nil
		}
	}
	return "", fmt.Errorf("harness: no known_hosts line for node %s", name)
}
