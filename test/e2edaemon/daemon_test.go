package e2edaemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/test/harness"
)

// component is the name of node_exporter in the test manifests.
const component = "node-exporter"

// spec is what a test varies in its manifest.
type spec struct {
	version        string // node_exporter version: 1.8.2 or 1.9.1
	maxUnavailable string // default 3: all at once, where order is not the point
	comment        string // a new generation with the same meaning
}

// pair is the version most nodes run now (1.9.1 when none does) and the
// other one: starting each test from what the last one left spares a
// rollout.
func (s *suite) pair() (from, to string) {
	old := 0
	for _, v := range s.versions() {
		if v == s.old.Version {
			old++
		}
	}
	if 2*old > len(s.c.Nodes) {
		return s.old.Version, s.new.Version
	}
	return s.new.Version, s.old.Version
}

func (s *suite) artifact(version string) harness.Artifact {
	if version == s.old.Version {
		return s.old
	}
	return s.new
}

// manifest renders the cluster's manifest: node_exporter on every node,
// listening on the node's own address, probed every 5s.
func (s *suite) manifest(sp spec) string {
	a := s.artifact(sp.version)
	if sp.maxUnavailable == "" {
		sp.maxUnavailable = "3"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\napiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: e2edaemon\nspec:\n  installRoot: /opt/drover\n  probeInterval: 5s\n", sp.comment)
	b.WriteString(harness.Indent(s.c.SSHYAML(), 2))
	b.WriteString(harness.Indent(s.c.NodesYAML(func(int) []string { return []string{"node"} }), 2))
	fmt.Fprintf(&b, `  components:
    - name: %s
      version: %q
      artifact:
        path: %s
        sha256: %q
      service:
        exec: "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100 --collector.disable-defaults --collector.loadavg"
        user: nobody
      health:
        http: {port: 9100, path: /metrics}
        timeout: 5s
  rollout:
    maxUnavailable: %s
    healthTimeout: 3m
    onFailure: rollback
`, component, a.Version, a.Path, a.SHA256, sp.maxUnavailable)
	return b.String()
}

// writeManifest writes the manifest for sp to path.
func (s *suite) writeManifest(t *testing.T, path string, sp spec) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s.manifest(sp)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// daemon is one `drover daemon` subprocess.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
	err  error // Wait's result, once done is closed
}

var daemonSeq int

// startDaemon runs `drover daemon -f manifest` on a free loopback port,
// its JSON log in a file, and waits until it serves /healthz. The test's
// cleanup stops it (SIGTERM, then SIGKILL) if it still runs.
func (s *suite) startDaemon(t *testing.T, manifest string) *daemon {
	t.Helper()
	daemonSeq++
	d := &daemon{
		t:    t,
		addr: freeAddr(t),
		log:  filepath.Join(s.work, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), daemonSeq)),
		done: make(chan struct{}),
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(s.drover, "daemon", "-f", manifest, "--listen", d.addr, "--lock-dir", s.lockDir, "--grace", "60s")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// A killed test binary takes its daemon with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log %s (last lines):\n%s", d.log, d.tail(40))
		}
		d.stop()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("daemon exited at start: %v\n%s", d.err, d.tail(20))
		default:
		}
		if resp, err := http.Get("http://" + d.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("daemon not serving on %s after 60s\n%s", d.addr, d.tail(20))
	return nil
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stop ends the daemon by pid: SIGTERM, and SIGKILL if it is not gone
// after the grace period and a little more.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(90 * time.Second):
		d.t.Errorf("daemon pid %d ignored SIGTERM for 90s; killing it", d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// kill is a power cut of the daemon.
func (d *daemon) kill() {
	d.t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		d.t.Fatal(err)
	}
	<-d.done
}

// exitedWithin waits for the daemon to exit and returns its exit code.
func (d *daemon) exitedWithin(within time.Duration) (int, bool) {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode(), true
	case <-time.After(within):
		return 0, false
	}
}

func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// tail is the last n lines of the daemon's log.
func (d *daemon) tail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines are the daemon's log lines decoded; each must be JSON.
func (d *daemon) logLines() []map[string]any {
	d.t.Helper()
	f, err := os.Open(d.log)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// The one line for a human: the console's URL with a generated
		// token, kept out of the JSON log on purpose.
		if strings.HasPrefix(sc.Text(), "drover: web console: http://") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			d.t.Errorf("daemon log line is not JSON: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

// logHas reports whether a log line has every given field value.
func (d *daemon) logHas(fields map[string]string) bool {
	b, _ := os.ReadFile(d.log)
	for _, line := range bytes.Split(b, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		ok := true
		for k, v := range fields {
			if fmt.Sprint(m[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (d *daemon) get(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (d *daemon) status() reconciler.ClusterStatus {
	d.t.Helper()
	b, err := d.get("/api/v1/status")
	if err != nil {
		d.t.Fatal(err)
	}
	var st reconciler.ClusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

func (d *daemon) metrics() string {
	d.t.Helper()
	b, err := d.get("/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	return string(b)
}

// hasMetric reports whether the exposition has exactly this sample line.
func hasMetric(exposition, line string) bool {
	return strings.Contains("\n"+exposition, "\n"+line+"\n")
}

var buildInfoRE = regexp.MustCompile(`node_exporter_build_info\{[^}]*version="([^"]+)"`)

// nodeVersion is the version node_exporter reports on the node itself.
func nodeVersion(n harness.Node) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + n.Address + ":9100/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := buildInfoRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no node_exporter_build_info", n.Name)
	}
	return string(m[1]), nil
}

// versions is what each node's node_exporter reports ("down: ..." when
// it does not answer).
func (s *suite) versions() map[string]string {
	out := map[string]string{}
	for _, n := range s.c.Nodes {
		v, err := nodeVersion(n)
		if err != nil {
			v = "down: " + err.Error()
		}
		out[n.Name] = v
	}
	return out
}

// eventually polls cond every 250ms until it holds or within is over.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// converged reports whether the daemon says every node runs version,
// converged, and every node's node_exporter says so too.
func (s *suite) converged(d *daemon, version string) bool {
	st := d.status()
	if len(st.Nodes) != len(s.c.Nodes) {
		return false
	}
	for _, n := range st.Nodes {
		if !n.Converged || len(n.Components) != 1 || n.Components[0].ObservedVersion != version {
			return false
		}
	}
	for _, v := range s.versions() {
		if v != version {
			return false
		}
	}
	return true
}

// waitConverged waits for converged(version), reporting where each node
// is if it does not come.
func (s *suite) waitConverged(t *testing.T, d *daemon, version string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !s.converged(d, version) {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range d.status().Nodes {
				fmt.Fprintf(&b, "\n  %s converged=%v reason=%q", n.Name, n.Converged, n.Reason)
			}
			t.Fatalf("cluster not converged on %s after %s; nodes report %v; status:%s", version, within, s.versions(), b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// actionCount is how many actions the daemon has recorded per node.
func actionCount(st reconciler.ClusterStatus) map[string]int {
	out := map[string]int{}
	for _, n := range st.Nodes {
		out[n.Name] = len(n.History)
	}
	return out
}

// nodeState is the installed truth on a node, read over SSH: the active
// link, the receipt's version and the unit's state.
func (s *suite) nodeState(t *testing.T, node string) (active, receipt, unit string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.c.Exec(ctx, node, `readlink /opt/drover/active/`+component+`; `+
		`sed -n 's/.*"version":"\([^"]*\)".*/\1/p' /opt/drover/receipts/`+component+`.json; `+
		`systemctl is-active drover-`+component+`.service || true`)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(out), "\n")
	for len(f) < 3 {
		f = append(f, "")
	}
	return filepath.Base(f[0]), f[1], f[2]
}
