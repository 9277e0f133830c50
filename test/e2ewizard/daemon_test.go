package e2ewizard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler"
)

// buildDrover builds the binary under test into dir.
func buildDrover(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "drover")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/drover-project/drover/cmd/drover")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build drover: %w\n%s", err, out)
	}
	return bin, nil
}

// daemon is one `drover daemon` subprocess.
type daemon struct {
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
	err  error
}

// startDaemon runs `drover daemon -f manifest` on a free loopback port with
// extra flags, and waits for /healthz. The test's cleanup stops it by pid.
func startDaemon(t *testing.T, bin, manifest, work string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{addr: freeAddr(t), log: filepath.Join(work, "daemon.log"), done: make(chan struct{})}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"daemon", "-f", manifest, "--listen", d.addr, "--lock-dir", filepath.Join(work, "lock"), "--grace", "30s"}, extra...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log %s (last lines):\n%s", d.log, d.tail(40))
		}
		d.stop(t)
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

// stop sends SIGTERM to the daemon's pid, then SIGKILL if it lingers.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Errorf("daemon pid %d ignored SIGTERM for 60s; killing it", d.cmd.Process.Pid)
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

func (d *daemon) status(t *testing.T) reconciler.ClusterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+"/api/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var st reconciler.ClusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status: %v\n%s", err, b)
	}
	return st
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
