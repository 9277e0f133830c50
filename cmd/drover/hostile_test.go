package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/internal/sshtest"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// slowTemplate runs into the templates' time budget rather than their
// step or byte budgets: each step compares two distinct 1 MB strings.
const slowTemplate = `{{$a := printf \"%0999999d\" 1}}{{$b := printf \"%0999999d\" 2}}{{range 1000000}}{{if eq $a $b}}{{end}}{{end}}`

// TestDaemonStopsDuringPathologicalLoad runs the real binary: a manifest
// whose templates take the whole time budget is written over the
// watched one, and a SIGTERM during its load stops the daemon within its
// grace (the load runs beside the signal loop and is cancelled).
func TestDaemonStopsDuringPathologicalLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "drover")
	if err := harness.BuildDrover(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	good := unreachableManifest(t, "30s")
	if err := os.WriteFile(manifest, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	const grace = 2 * time.Second
	d := daemonproc.Start(t, daemonproc.Options{Binary: bin, Manifest: manifest, Grace: grace})
	bomb := strings.Replace(good, `template: "x"`, `template: "`+slowTemplate+`"`, 1)
	if err := os.WriteFile(manifest, []byte(bomb), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the watcher's debounce, and well into the load
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, exited := d.ExitedWithin(grace + 2*time.Second); !exited {
		t.Fatalf("the daemon still runs %v after SIGTERM (grace %v):\n%s", time.Since(start), grace, d.Tail(20))
	}
	if log := d.Tail(20); !strings.Contains(log, "drover daemon stopped") {
		t.Errorf("no clean stop in the log:\n%s", log)
	}
}

// hostileNodeText is what a hostile node can put in its stderr or its
// receipts: a title change, a screen clear with a forged line, a CR that
// overwrites the line, a forged row and a C1 control.
const hostileNodeText = "\x1b]0;owned\a\x1b[2J\x1b[Hall nodes converged\rok\nn9 converged\u009b31m"

// TestTextOutputEscapesNodeStrings: every text printer of node-sourced
// strings (plan, probe, status, apply's progress) escapes control
// characters; JSON output escapes them by itself.
func TestTextOutputEscapesNodeStrings(t *testing.T) {
	pl := plan.Plan{Nodes: []plan.NodePlan{
		{Node: "n1", Address: "10.0.0.1", Known: false, Reason: "probe: " + hostileNodeText},
		{Node: "n2", Address: "10.0.0.2", Known: true, Actions: []plan.Action{
			{Node: "n2", Component: "app", Kind: plan.ActionUpgrade, From: hostileNodeText, To: "2", Reason: hostileNodeText},
		}},
	}}
	status := plan.ClusterStatus{Cluster: "c", LoadError: "cluster.yaml: 1 problem(s):\n  spec.x: \x1b]0;owned\a\x1b[2J",
		Rollout: plan.RolloutStatus{Halted: true, Reason: hostileNodeText},
		Nodes: []plan.NodeStatus{
			{Name: "n1", Reason: hostileNodeText},
			{Name: "n2", Reachable: true, Components: []plan.ComponentStatus{
				{Name: "app", DesiredVersion: "1", ObservedVersion: hostileNodeText, Reason: hostileNodeText},
			}},
		}}
	printers := map[string]func(w *strings.Builder) error{
		"plan": func(w *strings.Builder) error { return plan.WritePlanText(w, pl) },
		"status": func(w *strings.Builder) error {
			printStatus(w, status)
			return nil
		},
		"probe": func(w *strings.Builder) error { return writeProbeReport(w, "text", status.Nodes) },
		"apply": func(w *strings.Builder) error {
			p := newProgress(w, 1)
			for _, kind := range []reconciler.EventKind{"action-start", "action-done", "action-failed", "rollback", "halt"} {
				p.event(reconciler.Event{Node: "n1", Kind: kind, Message: hostileNodeText, Action: &plan.Action{Kind: plan.ActionInstall}})
			}
			p.event(reconciler.Event{Node: "n1", Kind: "probe", Message: "unknown: " + hostileNodeText})
			return nil
		},
	}
	for name, print := range printers {
		var b strings.Builder
		if err := print(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Errorf("%s prints control character %U:\n%q", name, r, out)
				break
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "n9 converged") {
				t.Errorf("%s prints a line the node forged:\n%s", name, out)
			}
		}
		if !strings.Contains(out, `\x1b]0;owned\x07`) {
			t.Errorf("%s does not show the escape sequence escaped:\n%s", name, out)
		}
	}
}

// hungNodeManifest is a manifest whose one node is an SSH server that
// accepts every command and never runs it.
func hungNodeManifest(t *testing.T) (manifest string, srv *sshtest.Server) {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{Addr: "127.0.252.1:0", HangExec: true})
	dir := t.TempDir()
	manifest = filepath.Join(dir, "cluster.yaml")
	text := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: hung}
spec:
  installRoot: %s
  ssh: {user: root, port: %d, identityFiles: [%s], knownHostsFile: %s, connectTimeout: 2s}
  nodes:
    - {name: h1, address: 127.0.252.1, roles: [a]}
  components:
    - name: app
      version: "1.0"
      files: [{path: conf/app.cfg, template: "x"}]
`, filepath.Join(dir, "root"), f.Server.Port(), f.Key.Path, f.KnownHosts)
	if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest, f.Server
}

// TestPlanAndApplyEndAtDeadline: against a node whose sshd answers but
// whose commands never run, plan and apply end at their --timeout,
// report the node unknown, and leave no session open on it.
func TestPlanAndApplyEndAtDeadline(t *testing.T) {
	for _, args := range [][]string{
		{"plan", "--timeout", "2s"},
		{"apply", "--yes", "--timeout", "2s", "--grace", "1s"},
	} {
		t.Run(args[0], func(t *testing.T) {
			manifest, srv := hungNodeManifest(t)
			start := time.Now()
			done := make(chan struct{})
			var code int
			var out, errs string
			go func() {
				defer close(done)
				code, out, errs = runDrover(t, append(args, "-f", manifest)...)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s still runs after 30s against a hung node", args[0])
			}
			took := time.Since(start)
			if took > 8*time.Second {
				t.Errorf("%s took %v with --timeout 2s", args[0], took)
			}
			if code == 0 || !strings.Contains(out+errs, "h1") {
				t.Errorf("exit %d against a hung node; stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			if srv.Stats().Sessions == 0 {
				t.Fatal("no command ever reached the node: the test tests nothing")
			}
			daemonproc.WaitFor(t, 5*time.Second, "every session on the node closed", func() bool { return srv.Stats().InFlight == 0 })
		})
	}
}

// TestDaemonHTTPHostile: the daemon refuses a DNS-rebinding page's Host
// on every endpoint, and its unauthenticated status does not repeat what
// a rejected inventoryFile holds (only the file and the kinds of problem).
func TestDaemonHTTPHostile(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	good := unreachableManifest(t, "30s")
	if err := os.WriteFile(manifest, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _ := inProcessDaemon(t, manifest, filepath.Join(dir, "run"))
	for _, path := range []string{"/", api.PathStatus, api.PathPlan, "/api/v1/events", "/metrics", "/setup"} {
		for host, want := range map[string]int{"evil.example": 421, addr: 200, "localhost": 200} {
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Host = host
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				cancel()
				t.Fatalf("%s with Host %s: %v", path, host, err)
			}
			resp.Body.Close()
			cancel()
			if resp.StatusCode != want {
				t.Errorf("%s with Host %s: %d, want %d", path, host, resp.StatusCode, want)
			}
		}
	}

	// An inventoryFile pointed at a file of secrets.
	secrets := filepath.Join(dir, "shadow")
	if err := os.WriteFile(secrets, []byte("root:$6$s3cr3tHash:19000:0:99999:7:::\npassword: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withInventory := strings.Replace(good, "  nodes:\n    - {name: n1, address: 127.0.9.1, roles: [agent]}\n    - {name: n2, address: 127.0.9.2, roles: [agent]}\n",
		"  inventoryFile: "+secrets+"\n", 1)
	if withInventory == good {
		t.Fatal("the test manifest changed: no nodes replaced")
	}
	if err := os.WriteFile(manifest, []byte(withInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the inventory rejected", func() bool { return getStatus(t, addr).LoadError != "" })
	st := getStatus(t, addr)
	for _, leak := range []string{"s3cr3tHash", "root", "password", "hunter2"} {
		if strings.Contains(st.LoadError, leak) {
			t.Errorf("the status repeats %q from the inventory file: %s", leak, st.LoadError)
		}
	}
	if !strings.Contains(st.LoadError, secrets) || !strings.Contains(st.LoadError, "inventory") {
		t.Errorf("the status does not say which file and what kind: %s", st.LoadError)
	}
}

// TestPlanRecordsNoHostKey: with ssh.acceptNewHostKeys, plan and probe
// still write nothing to known_hosts (they only look); apply records the
// first-seen key.
func TestPlanRecordsNoHostKey(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{Addr: "127.0.252.2:0"})
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	manifest := filepath.Join(dir, "cluster.yaml")
	text := fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: tofu}
spec:
  installRoot: %s
  ssh: {user: root, port: %d, identityFiles: [%s], knownHostsFile: %s, acceptNewHostKeys: true, connectTimeout: 2s}
  nodes:
    - {name: k1, address: 127.0.252.2, roles: [a]}
  components:
    - name: app
      version: "1.0"
      files: [{path: conf/app.cfg, template: "x"}]
`, filepath.Join(dir, "root"), f.Server.Port(), f.Key.Path, kh)
	if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plan", "--timeout", "20s"}, {"probe", "--timeout", "20s"}} {
		code, out, errs := runDrover(t, append(args, "-f", manifest)...)
		if _, err := os.Stat(kh); err == nil {
			data, _ := os.ReadFile(kh)
			t.Fatalf("%s wrote known_hosts (exit %d):\n%s\nstdout:\n%s\nstderr:\n%s", args[0], code, data, out, errs)
		}
		if !strings.Contains(out+errs, "known_hosts") {
			t.Errorf("%s does not say the host key is unknown:\n%s\n%s", args[0], out, errs)
		}
	}
	if code, out, errs := runDrover(t, "apply", "--yes", "--timeout", "60s", "-f", manifest); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	if data, err := os.ReadFile(kh); err != nil || !strings.Contains(string(data), "127.0.252.2") {
		t.Errorf("apply did not record the key: %v %q", err, data)
	}
}

// TestSpecialFilesNamedByTheManifest: a FIFO given as an identity file,
// as known_hosts or as an artifact is an error at once, never a read that
// blocks plan or apply.
func TestSpecialFilesNamedByTheManifest(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	f := sshtest.Setup(t, sshtest.Options{Addr: "127.0.252.3:0"})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := func(identity, knownHosts, artifact string) string {
		return fmt.Sprintf(`apiVersion: drover/v1
kind: Cluster
metadata: {name: fifo}
spec:
  installRoot: %s
  ssh: {user: root, port: %d, identityFiles: [%s], knownHostsFile: %s, connectTimeout: 2s}
  nodes:
    - {name: f1, address: 127.0.252.3, roles: [a]}
  components:
    - name: app
      version: "1.0"
      artifact: {path: %s, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
`, filepath.Join(dir, "root"), f.Server.Port(), identity, knownHosts, artifact)
	}
	artifact := filepath.Join(dir, "app.tar.gz")
	if err := os.WriteFile(artifact, []byte("not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, manifest string
		args           []string
	}{
		{"identity file", manifest(fifo, f.KnownHosts, artifact), []string{"plan", "--timeout", "60s"}},
		{"known_hosts", manifest(f.Key.Path, fifo, artifact), []string{"plan", "--timeout", "60s"}},
		{"artifact", manifest(f.Key.Path, f.KnownHosts, fifo), []string{"apply", "--yes", "--timeout", "60s"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("cluster%d.yaml", i))
			if err := os.WriteFile(path, []byte(tc.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var code int
			var out, errs string
			go func() {
				defer close(done)
				code, out, errs = runDrover(t, append(tc.args, "-f", path)...)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s blocks on a FIFO as the %s", tc.args[0], tc.name)
			}
			if code == 0 || !strings.Contains(out+errs, "not a regular file (it is a FIFO)") {
				t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
		})
	}
}

// TestDaemonRefusesSpecialManifest: a daemon whose manifest is a FIFO
// refuses to start at once instead of blocking on the read.
func TestDaemonRefusesSpecialManifest(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cluster.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var code int
	var errs string
	go func() {
		defer close(done)
		code, _, errs = runDrover(t, "daemon", "-f", fifo, "--lock-dir", filepath.Join(dir, "run"), "--addr", "127.0.252.4:0")
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon blocks on a FIFO manifest")
	}
	if code != 1 || !strings.Contains(errs, "it is a FIFO") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
