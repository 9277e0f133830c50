package e2econsole

import (
	"fmt"
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

	"github.com/drover-project/drover/test/harness"
)

// component is node_exporter's name in the test manifests.
const component = "node-exporter"

// manifest is node_exporter at version on every node, one node at a time
// (so a rollout is there to be seen), probed every 3s. Each node has a
// role and a label for the node page to show.
func (s *suite) manifest(version string) string {
	a := s.old
	if version == s.new.Version {
		a = s.new
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: e2econsole\nspec:\n  installRoot: /opt/drover\n  probeInterval: 3s\n")
	b.WriteString(harness.Indent(s.c.SSHYAML(), 2))
	b.WriteString("  nodes:\n")
	for i, n := range s.c.Nodes {
		fmt.Fprintf(&b, "    - {name: %s, address: %s, port: %d, roles: [node], labels: {zone: z%d}}\n", n.Name, n.Address, n.Port, i%2+1)
	}
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
    maxUnavailable: 1
    healthTimeout: 3m
    onFailure: rollback
`, component, a.Version, a.Path, a.SHA256)
	return b.String()
}

func (s *suite) writeManifest(t *testing.T, path, version string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s.manifest(version)), 0o644); err != nil {
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
	err  error
}

var consoleURLRE = regexp.MustCompile(`drover: web console: (http://\S+)`)

// startDaemon runs `drover daemon -f manifest` with a generated token on a
// free loopback port, its output in a log file, and returns it with the
// console URL it printed. The test's cleanup stops it (SIGTERM, then
// SIGKILL) and keeps its log among the artifacts.
func (s *suite) startDaemon(t *testing.T, manifest, artifacts string) (*daemon, string) {
	t.Helper()
	d := &daemon{t: t, addr: freeAddr(t), log: filepath.Join(artifacts, "daemon.log"), done: make(chan struct{})}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(s.drover, "daemon", "-f", manifest, "--listen", d.addr, "--lock-dir", filepath.Join(s.work, "lock"), "--grace", "60s")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // a killed test takes its daemon along
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log %s (last lines):\n%s", d.log, d.tail(30))
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
		b, _ := os.ReadFile(d.log)
		if m := consoleURLRE.FindSubmatch(b); m != nil {
			if resp, err := http.Get("http://" + d.addr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return d, string(m[1])
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("daemon not serving on %s, or no console URL printed, after 60s\n%s", d.addr, d.tail(20))
	return nil, ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stop ends the daemon by its pid: SIGTERM, then SIGKILL after 90s.
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

func (d *daemon) tail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
