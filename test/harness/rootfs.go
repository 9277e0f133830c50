package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// rootfsPackages are installed into the node image. default-jre-headless is
// there so ZooKeeper (shipped as jars, test/artifacts) runs on the nodes.
var rootfsPackages = []string{
	"systemd", "systemd-sysv", "openssh-server", "dbus", "iproute2", "curl",
	"default-jre-headless", "procps",
}

// rootfsCustomizeVersion names the edits customizeRootfs makes; bump it when
// they change so the cached image is rebuilt.
const rootfsCustomizeVersion = "3"

// maskedUnits would fight the host or just cost time in a container that
// shares the host's network namespace: network config, consoles, periodic jobs
// and the socket-activated sshd (ssh.service is the one we configure).
var maskedUnits = []string{
	"systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-wait-online.service",
	"systemd-resolved.service", "systemd-timesyncd.service",
	"console-getty.service", "getty@.service", "serial-getty@.service", "container-getty@.service",
	"ssh.socket",
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
	"e2scrub_reap.service", "fstrim.timer", "man-db.timer", "logrotate.timer",
	"systemd-pstore.service",
}

// rootfsRecipe is everything the image depends on; its hash names the cache dir.
func rootfsRecipe(mirror string) string {
	return strings.Join([]string{
		"debootstrap --variant=minbase --include=" + strings.Join(rootfsPackages, ",") + " bookworm " + mirror,
		"customize v" + rootfsCustomizeVersion,
		"mask " + strings.Join(maskedUnits, ","),
	}, "\n")
}

// BuildImage builds the systemd nodes' image if it is not cached yet and
// returns its path. BootSystemd does this itself; calling it first (e.g.
// `drover-nodes image` in make test) keeps a cold build, minutes on a busy
// machine, out of any single test's timeout.
func BuildImage(ctx context.Context, opts Options) (string, error) {
	if os.Geteuid() != 0 {
		return "", ErrNotRoot
	}
	opts = opts.withDefaults(KindSystemd)
	tools, err := lookTools("debootstrap", "unshare")
	if err != nil {
		return "", err
	}
	return ensureRootfs(ctx, opts, tools)
}

// ensureRootfs returns the cached node image, building it first if needed.
// The build goes to a temp dir that is renamed into place, so a killed build
// never leaves a half image under the final name; a file lock makes parallel
// test binaries wait for one build instead of running two.
func ensureRootfs(ctx context.Context, opts Options, tools map[string]string) (string, error) {
	sum := sha256.Sum256([]byte(rootfsRecipe(opts.Mirror)))
	final := filepath.Join(opts.CacheDir, "rootfs-"+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("harness: cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(opts.CacheDir, "rootfs.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil // built by another process while we waited
	}
	// Under the lock nobody else is building, so any temp dir is a dead build's.
	old, _ := filepath.Glob(filepath.Join(opts.CacheDir, "rootfs-*.tmp"))
	for _, d := range old {
		if err := removeTree(d); err != nil {
			return "", err
		}
	}
	tmp := final + ".tmp"
	logPath := final + ".log"
	if err := os.MkdirAll(filepath.Join(opts.CacheDir, "debs"), 0o755); err != nil {
		return "", fmt.Errorf("harness: cache dir: %w", err)
	}
	opts.Logf("harness: building node image %s (debootstrap, a few minutes; cached afterwards)", final)
	start := time.Now()
	logf, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("harness: rootfs log: %w", err)
	}
	// A private mount namespace: debootstrap mounts /proc and /sys inside the
	// target, and if it is killed those mounts die with the namespace instead
	// of staying on the host under the cache dir.
	cmd := exec.CommandContext(ctx, tools["unshare"], "--mount", "--propagation", "private", "--",
		tools["debootstrap"], "--variant=minbase", "--include="+strings.Join(rootfsPackages, ","),
		// Downloaded .debs kept for the next build (a recipe change).
		"--cache-dir="+filepath.Join(opts.CacheDir, "debs"),
		"bookworm", tmp, opts.Mirror)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// On cancel kill the whole group: dpkg and friends run as children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	logf.Close()
	if err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("harness: debootstrap: %w\n%s", err, consoleTail(logPath, 3000))
	}
	if err := customizeRootfs(tmp); err != nil {
		_ = removeTree(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("harness: rootfs: %w", err)
	}
	opts.Logf("harness: node image built in %v", time.Since(start).Round(time.Second))
	return final, nil
}

// customizeRootfs makes the image fit to boot many times side by side. Only
// file edits: running systemctl or a chroot here would be one mistake away
// from touching the host.
func customizeRootfs(root string) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	// Each node gets its own host key from the harness; shared keys from the
	// image would make all nodes one host to known_hosts.
	keys, _ := filepath.Glob(p("etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return fmt.Errorf("harness: rootfs: %w", err)
		}
	}
	for _, u := range maskedUnits {
		link := p("etc/systemd/system/" + u)
		_ = os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return fmt.Errorf("harness: rootfs: mask %s: %w", u, err)
		}
	}
	// Enablement links of masked units would only log errors.
	for _, l := range []string{
		"etc/systemd/system/getty.target.wants/getty@tty1.service",
		"etc/systemd/system/multi-user.target.wants/e2scrub_reap.service",
		"etc/systemd/system/sysinit.target.wants/systemd-pstore.service",
	} {
		if err := os.Remove(p(l)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("harness: rootfs: %w", err)
		}
	}
	files := map[string]string{
		// Debootstrap copies the build host's name; each node writes its own.
		"etc/hostname": "drover-node\n",
		// Journal in RAM and small: nodes are disposable and their disks
		// (overlay upper dirs) should hold only what tests install.
		"etc/systemd/journald.conf.d/drover-test.conf": "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n",
	}
	for rel, content := range files {
		if err := os.MkdirAll(filepath.Dir(p(rel)), 0o755); err != nil {
			return fmt.Errorf("harness: rootfs: %w", err)
		}
		if err := os.WriteFile(p(rel), []byte(content), 0o644); err != nil {
			return fmt.Errorf("harness: rootfs: %w", err)
		}
	}
	debs, _ := filepath.Glob(p("var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		_ = os.Remove(d)
	}
	return nil
}
