// Command demo is `make demo`: it boots three local systemd nodes, writes
// the demo manifest for them (examples/demo/cluster.yaml with real
// addresses, keys and checksums), and runs `drover daemon` against it in
// the foreground. Ctrl-C stops the daemon, then the nodes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drover-project/drover/test/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	example := flag.String("manifest", "examples/demo/cluster.yaml", "the demo manifest to start from")
	binary := flag.String("drover", "bin/drover", "the drover binary to run")
	listen := flag.String("listen", "127.0.0.1:9464", "where the daemon serves metrics and status")
	dir := flag.String("dir", "/var/lib/drover-demo", "where the demo manifest and its artifacts are written")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: must run as root: it boots systemd-nspawn nodes")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, *example, *binary, *listen, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, example, binary, listen, dir string) error {
	logf := func(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
	logf("building the artifacts (first run: a few minutes)")
	arts, err := harness.Artifacts(ctx)
	if err != nil {
		return err
	}
	logf("booting 3 systemd nodes (first run builds a Debian rootfs: a few minutes)")
	cluster, err := harness.BootSystemd(ctx, harness.Options{N: 3, Name: "demo", Logf: logf})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping the nodes")
		if err := cluster.Close(); err != nil {
			logf("stopping the nodes: %v", err)
		}
	}()

	manifest, err := writeManifest(example, dir, cluster, arts)
	if err != nil {
		return err
	}
	old, next := arts[harness.ArtifactNodeExporterOld], arts[harness.ArtifactNodeExporterNew]
	fmt.Printf(`
drover demo: 3 nodes (%s, %s, %s), manifest %s

  metrics   http://%[5]s/metrics
  status    http://%[5]s/api/v1/status    or: bin/drover status --addr %[5]s
  plan      http://%[5]s/api/v1/plan

Trigger an upgrade of node_exporter by editing the manifest, for example:

  sed -i 's/version: 1.8.2/version: 1.9.1/; s/node_exporter-1.8.2/node_exporter-1.9.1/; s/%[6]s/%[7]s/' %[4]s

and watch the daemon roll it out one node at a time. Stop a unit on a node
(bin/drover status shows the drift, the daemon repairs it):

  ssh -i %[8]s -o UserKnownHostsFile=%[9]s root@%[1]s systemctl stop drover-node-exporter

Ctrl-C stops the daemon and the nodes.

`, cluster.Nodes[0].Address, cluster.Nodes[1].Address, cluster.Nodes[2].Address, manifest, listen,
		old.SHA256, next.SHA256, cluster.IdentityFile, cluster.KnownHostsFile)

	// The nodes are new each time, so is what the daemon decided about
	// them: a halt or a history of the last demo's nodes would mislead.
	stateDir := filepath.Join(dir, "state")
	if err := os.RemoveAll(stateDir); err != nil {
		return err
	}
	cmd := exec.Command(binary, "daemon", "-f", manifest, "--addr", listen, "--state-dir", stateDir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// The daemon gets its own process group: Ctrl-C reaches us, and we
	// forward SIGTERM so it can finish in-flight actions before the nodes stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("daemon exited: %w", err)
	case <-ctx.Done():
	}
	logf("stopping the daemon (pid %d)", cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// writeManifest fills the example with the booted nodes, the harness's
// keys and the artifacts' real checksums, keeping its comments.
func writeManifest(example, dir string, c *harness.Cluster, arts map[string]harness.Artifact) (string, error) {
	raw, err := os.ReadFile(example)
	if err != nil {
		return "", err
	}
	text := string(raw)
	if err := os.MkdirAll(filepath.Join(dir, "artifacts"), 0o755); err != nil {
		return "", err
	}
	placeholders := map[string]string{
		harness.ArtifactNodeExporterOld: strings.Repeat("1", 64),
		harness.ArtifactZooKeeper:       strings.Repeat("2", 64),
	}
	for key, placeholder := range placeholders {
		text = strings.ReplaceAll(text, placeholder, arts[key].SHA256)
	}
	for _, key := range []string{harness.ArtifactNodeExporterOld, harness.ArtifactNodeExporterNew, harness.ArtifactZooKeeper} {
		a := arts[key]
		if err := copyFile(a.Path, filepath.Join(dir, "artifacts", filepath.Base(a.Path))); err != nil {
			return "", err
		}
	}
	for i, n := range c.Nodes {
		text = strings.ReplaceAll(text, fmt.Sprintf("address: 127.0.2.%d,", i+1), "address: "+n.Address+",")
	}
	text = strings.Replace(text, "  ssh:\n", fmt.Sprintf("  ssh:\n    identityFiles: [%s]\n    knownHostsFile: %s\n", c.IdentityFile, c.KnownHostsFile), 1)
	path := filepath.Join(dir, "cluster.yaml")
	return path, os.WriteFile(path, []byte(text), 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
