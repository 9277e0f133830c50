// Package e2eservice installs drover's Debian package (make package) on
// a real systemd node, the "bootstrap host", and runs it as
// drover.service against two other nodes, as an operator would (issue
// 21): apt-get install, a manifest in /etc/drover, systemctl. It checks
// readiness (Type=notify), a rollout of an edit, a halt that survives
// `systemctl restart`, the journal, the watchdog restarting a stopped
// daemon, and apt-get purge leaving the managed nodes alone. The test
// needs root and skips under -short.
package e2eservice

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/harness"
)

// listenHost is the daemon's listen address on the shared loopback: the
// nodes share the host's network, and this range is this test's own.
const listenHost = "127.0.1.100"

// component is the component the test rolls out; its unit on the nodes.
const (
	component = "node-exporter"
	unit      = "drover-node-exporter.service"
)

type env struct {
	t      *testing.T
	c      *harness.Cluster
	boot   string // the bootstrap node's name
	nodes  []harness.Node
	arts   map[string]harness.Artifact
	addr   string // the daemon's --addr
	artDir string // artifacts on the bootstrap node
}

func TestPackagedService(t *testing.T) {
	if testing.Short() {
		t.Skip("e2eservice: skipped in -short mode")
	}
	harness.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// The package, the artifacts and the nodes, at once.
	deb := filepath.Join(t.TempDir(), "drover_test_amd64.deb")
	pkgErr := make(chan error, 1)
	go func() {
		out, err := exec.CommandContext(ctx, "make", "-C", "../..", "package", "DEB="+deb).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("make package: %w\n%s", err, out)
		}
		pkgErr <- err
	}()
	arts, err := harness.Artifacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := harness.BootSystemd(ctx, harness.Options{N: 3, Name: "es", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := <-pkgErr; err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, c: c, boot: c.Nodes[0].Name, nodes: c.Nodes[1:], arts: arts, addr: freeAddr(t), artDir: "/var/lib/drover/artifacts"}

	// Install. Without a manifest of the operator's the daemon stays down.
	e.push(ctx, deb, "/root/drover.deb", "0644")
	e.run(ctx, "DEBIAN_FRONTEND=noninteractive apt-get install -y /root/drover.deb")
	if st := e.state(ctx); st != "inactive" {
		t.Errorf("after install with no manifest: drover.service is %s, want inactive", st)
	}
	e.run(ctx, "getent passwd drover && test -s /var/lib/drover/.ssh/id_ed25519 && test -e /var/lib/drover/.ssh/known_hosts && test -e /etc/drover/cluster.yaml.example && test ! -e /etc/drover/cluster.yaml")
	e.run(ctx, "test -s /usr/share/man/man1/drover-daemon.1.gz && test -s /usr/share/bash-completion/completions/drover")
	security := e.run(ctx, "systemd-analyze security --no-pager drover.service")
	t.Logf("systemd-analyze security drover.service:\n%s", security)
	if m := regexp.MustCompile(`Overall exposure level for drover.service: ([0-9.]+) (\w+)`).FindStringSubmatch(security); m == nil ||
		(m[2] != "OK" && m[2] != "SAFE" && m[2] != "PERFECT") {
		t.Errorf("systemd-analyze security: %v, want OK or better", m)
	}

	// The operator's part: the key on the nodes, the artifacts, a
	// manifest. Host keys are learnt on first sight (acceptNewHostKeys),
	// so the hardened unit must let drover write known_hosts. The drop-in
	// moves the listener to this test's address and shortens the watchdog
	// for the SIGSTOP below.
	pub := e.run(ctx, "cat /var/lib/drover/.ssh/id_ed25519.pub")
	for _, n := range e.nodes {
		if _, err := c.Exec(ctx, n.Name, "umask 077; mkdir -p ~/.ssh; printf '%s' '"+strings.TrimSpace(pub)+"\n' >> ~/.ssh/authorized_keys"); err != nil {
			t.Fatal(err)
		}
	}
	e.run(ctx, "mkdir -p "+e.artDir)
	for _, a := range []string{harness.ArtifactNodeExporterOld, harness.ArtifactNodeExporterNew, harness.ArtifactFailing} {
		e.push(ctx, arts[a].Path, e.artDir+"/"+filepath.Base(arts[a].Path), "0644")
	}
	e.run(ctx, "chown -R drover:drover /var/lib/drover/.ssh "+e.artDir)
	e.write(ctx, "/etc/systemd/system/drover.service.d/test.conf", fmt.Sprintf(`[Service]
ExecStart=
ExecStart=/usr/bin/drover daemon --addr %s --web.config.file /etc/drover/web-config.yml --token-file /var/lib/drover/console-token
WatchdogSec=4s
RestartSec=1s
`, e.addr))
	e.run(ctx, "systemctl daemon-reload")
	e.write(ctx, "/etc/drover/cluster.yaml", e.manifest(harness.ArtifactNodeExporterOld, ""))

	// Readiness: active only once the daemon said READY=1, after the
	// manifest is in force and the HTTP server serves.
	out := e.run(ctx, fmt.Sprintf(`systemctl start --no-block drover.service
for i in $(seq 400); do
	s=$(systemctl is-active drover.service)
	if [ "$s" = active ]; then curl -fsS -o /dev/null http://%s/healthz && echo serving || echo not-serving; break; fi
	echo "$s"; sleep 0.02
done`, e.addr))
	if !strings.HasSuffix(strings.TrimSpace(out), "serving") || strings.Contains(out, "not-serving") {
		t.Errorf("states while starting:\n%s\nwant active only once it serves", out)
	}
	journal := e.run(ctx, "journalctl -u drover.service -o cat --no-pager")
	loaded, started := strings.Index(journal, `"msg":"manifest loaded"`), strings.Index(journal, "Started drover.service")
	if loaded < 0 || started < 0 || started < loaded {
		t.Errorf("systemd said started (at %d) before the manifest was loaded (at %d):\n%s", started, loaded, journal)
	}
	old := arts[harness.ArtifactNodeExporterOld].Version
	e.waitStatus(ctx, 3*time.Minute, "converged on "+old, func(st plan.ClusterStatus) bool { return convergedOn(st, old) })
	knownHosts := e.run(ctx, "cat /var/lib/drover/.ssh/known_hosts")
	for _, n := range e.nodes {
		if !strings.Contains(knownHosts, n.Address) {
			t.Errorf("known_hosts lacks %s's key:\n%s", n.Name, knownHosts)
		}
	}

	// An edit rolls out.
	next := arts[harness.ArtifactNodeExporterNew].Version
	e.write(ctx, "/etc/drover/cluster.yaml", e.manifest(harness.ArtifactNodeExporterNew, ""))
	e.waitStatus(ctx, 3*time.Minute, "converged on "+next, func(st plan.ClusterStatus) bool { return convergedOn(st, next) })

	// A failed rollout halts, and the halt survives a restart.
	e.write(ctx, "/etc/drover/cluster.yaml", e.manifest(harness.ArtifactFailing, "{{ .Dir }}/bin/failing"))
	halted := e.waitStatus(ctx, 3*time.Minute, "the rollout halted", func(st plan.ClusterStatus) bool { return st.Rollout.Halted })
	pid := e.run(ctx, "systemctl show -p MainPID --value drover.service")
	e.run(ctx, "systemctl restart drover.service")
	if pid2 := e.run(ctx, "systemctl show -p MainPID --value drover.service"); pid2 == pid {
		t.Fatalf("restart kept pid %s", pid)
	}
	after := e.status(ctx)
	if !after.Rollout.Halted || after.Rollout.Reason != halted.Rollout.Reason || after.Generation != halted.Generation {
		t.Errorf("after systemctl restart: halt %+v generation %d, want %+v generation %d", after.Rollout, after.Generation, halted.Rollout, halted.Generation)
	}
	text := e.run(ctx, "drover status --addr "+e.addr)
	if !strings.Contains(text, "rollout HALTED: "+halted.Rollout.Reason) || !regexp.MustCompile(`(?m)^\S+\s+`+halted.Rollout.Node+`\s+upgrade\s+`+component+`\s+\S+\s+failure`).MatchString(text) {
		t.Errorf("drover status after the restart lacks the halt or the failed upgrade from before:\n%s", text)
	}
	journal = e.run(ctx, "journalctl -u drover.service -o cat --no-pager")
	for _, want := range []string{`"msg":"rollout halted"`, `"msg":"rollout still halted from before the restart"`, `"msg":"action succeeded"`} {
		if !strings.Contains(journal, want) {
			t.Errorf("journalctl -u drover lacks %s", want)
		}
	}

	// A stopped daemon feeds no watchdog: systemd restarts it.
	pid = e.run(ctx, "systemctl show -p MainPID --value drover.service")
	e.run(ctx, "kill -STOP "+pid)
	deadline := time.Now().Add(time.Minute)
	for {
		now := e.run(ctx, "systemctl show -p MainPID --value drover.service")
		if now != pid && now != "0" && e.state(ctx) == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drover (pid %s) stopped a minute ago and was not restarted", pid)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if j := e.run(ctx, "journalctl -u drover.service --no-pager"); !strings.Contains(j, "Watchdog timeout") {
		t.Errorf("the journal does not say the watchdog fired:\n%s", j)
	}
	if st := e.status(ctx); !st.Rollout.Halted {
		t.Errorf("after the watchdog's restart the halt is gone")
	}

	// Purge removes drover from the bootstrap host and nothing else.
	e.run(ctx, "DEBIAN_FRONTEND=noninteractive apt-get purge -y drover")
	e.run(ctx, "test ! -e /usr/bin/drover && test ! -e /usr/lib/systemd/system/drover.service && test ! -e /var/lib/drover && ! getent passwd drover && test ! -e /etc/drover/web-config.yml")
	if st := e.state(ctx); st == "active" || st == "activating" {
		t.Errorf("after purge drover.service is %s", st)
	}
	for _, n := range e.nodes {
		if out, err := c.Exec(ctx, n.Name, "systemctl is-active "+unit+" && test -L /opt/drover/active/"+component); err != nil {
			t.Errorf("%s after the purge: %v %s", n.Name, err, out)
		}
	}
}

// manifest names the two managed nodes and runs artifact a (exec: its
// command; default node_exporter). Host keys and the key are the drover
// user's, as the package laid them out.
func (e *env) manifest(a, execCmd string) string {
	art := e.arts[a]
	if execCmd == "" {
		execCmd = "{{ .Dir }}/bin/node_exporter"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: e2eservice}\nspec:\n  installRoot: /opt/drover\n  probeInterval: 5s\n")
	fmt.Fprintf(&b, "  ssh:\n    user: %s\n    identityFiles: [/var/lib/drover/.ssh/id_ed25519]\n    knownHostsFile: /var/lib/drover/.ssh/known_hosts\n    acceptNewHostKeys: true\n", e.c.User)
	b.WriteString("  nodes:\n")
	for _, n := range e.nodes {
		fmt.Fprintf(&b, "    - {name: %s, address: %s, port: %d}\n", n.Name, n.Address, n.Port)
	}
	fmt.Fprintf(&b, `  components:
    - name: %s
      version: %q
      artifact: {path: %s/%s, sha256: %q}
      service:
        exec: "%s --web.listen-address={{ .Node.Address }}:9100 --collector.disable-defaults --collector.loadavg"
        user: nobody
      health:
        http: {port: 9100, path: /metrics}
        timeout: 5s
  rollout:
    maxUnavailable: 1
    healthTimeout: 20s
    onFailure: rollback
`, component, art.Version, e.artDir, filepath.Base(art.Path), art.SHA256, execCmd)
	return b.String()
}

// run runs a shell command on the bootstrap node and returns its output,
// trimmed; failing is fatal.
func (e *env) run(ctx context.Context, cmd string) string {
	e.t.Helper()
	out, err := e.c.Exec(ctx, e.boot, cmd)
	if err != nil {
		e.t.Fatalf("%s\n%s", err, out)
	}
	return strings.TrimSpace(out)
}

// state is `systemctl is-active drover.service` (it exits non-zero
// unless active).
func (e *env) state(ctx context.Context) string {
	out, _ := e.c.Exec(ctx, e.boot, "systemctl is-active drover.service")
	return strings.TrimSpace(out)
}

// push copies a local file to path on the bootstrap node.
func (e *env) push(ctx context.Context, local, path, mode string) {
	e.t.Helper()
	f, err := os.Open(local)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	e.pipe(ctx, f, path, mode)
}

// write writes content to path on the bootstrap node, by rename.
func (e *env) write(ctx context.Context, path, content string) {
	e.t.Helper()
	e.pipe(ctx, strings.NewReader(content), path, "0644")
}

func (e *env) pipe(ctx context.Context, in io.Reader, path, mode string) {
	e.t.Helper()
	args, err := e.c.SSHArgs(e.boot)
	if err != nil {
		e.t.Fatal(err)
	}
	dir := filepath.Dir(path)
	script := fmt.Sprintf("mkdir -p %s && cat > %s.tmp && chmod %s %s.tmp && mv %s.tmp %s", dir, path, mode, path, path, path)
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], "--", script)...)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("copy to %s:%s: %v\n%s", e.boot, path, err, out)
	}
}

// status is the daemon's status, as `drover status -o json` on the
// bootstrap node prints it.
func (e *env) status(ctx context.Context) plan.ClusterStatus {
	e.t.Helper()
	var st plan.ClusterStatus
	out, err := e.c.Exec(ctx, e.boot, "drover status -o json --addr "+e.addr)
	if err != nil {
		return st
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

// waitStatus polls the status until cond holds and returns it.
func (e *env) waitStatus(ctx context.Context, within time.Duration, what string, cond func(plan.ClusterStatus) bool) plan.ClusterStatus {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := e.status(ctx)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			e.t.Fatalf("timed out after %s waiting for %s; status:\n%s\njournal:\n%s", within, what, b,
				e.run(ctx, "journalctl -u drover.service -o cat --no-pager | tail -n 40"))
		}
		time.Sleep(time.Second)
	}
}

func convergedOn(st plan.ClusterStatus, version string) bool {
	if len(st.Nodes) != 2 {
		return false
	}
	for _, n := range st.Nodes {
		if !n.Converged || len(n.Components) != 1 || n.Components[0].ObservedVersion != version {
			return false
		}
	}
	return true
}

// freeAddr is a free port on listenHost.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", listenHost+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
