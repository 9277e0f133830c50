package probes

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

// dialLog records every address DialTCP was asked for.
type dialLog struct {
	*localRunner
	addrs chan string
}

func (d dialLog) DialTCP(ctx context.Context, t inventory.Target, addr string) (net.Conn, error) {
	d.addrs <- addr
	return d.localRunner.DialTCP(ctx, t, addr)
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port := hostPort(t, l.Addr().String())
	r := dialLog{newLocalRunner(t), make(chan string, 4)}
	node := inventory.Target{Name: "n1", Address: "127.0.0.1"}

	// Host defaults to the node's address.
	got := CheckHealth(context.Background(), r, node, &manifests.Health{TCP: &manifests.TCPCheck{Port: port}})
	if !got.Checked || !got.OK {
		t.Errorf("open port: %+v", got)
	}
	if addr := <-r.addrs; addr != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("dialled %s, want the node's address", addr)
	}
	closed := closedPort(t)
	got = CheckHealth(context.Background(), r, inventory.Target{Address: "192.0.2.1"}, &manifests.Health{TCP: &manifests.TCPCheck{Host: "127.0.0.1", Port: closed}})
	if !got.Checked || got.OK || !strings.Contains(got.Message, "127.0.0.1:"+strconv.Itoa(closed)) {
		t.Errorf("closed port: %+v", got)
	}
	if addr := <-r.addrs; addr != "127.0.0.1:"+strconv.Itoa(closed) {
		t.Errorf("dialled %s, want the check's own host", addr)
	}
}

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok"))
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())
	node := inventory.Target{Name: "n1", Address: host}
	r := newLocalRunner(t)
	check := func(path string, expect int) HealthResult {
		h := &manifests.Health{HTTP: &manifests.HTTPCheck{Port: port, Path: path, ExpectStatus: expect}, Timeout: "2s"}
		return CheckHealth(context.Background(), r, node, h)
	}
	if got := check("/healthz", 0); !got.Checked || !got.OK || !strings.Contains(got.Message, "status 200") {
		t.Errorf("/healthz: %+v", got)
	}
	if got := check("/sick", 200); !got.Checked || got.OK || !strings.Contains(got.Message, "status 503, want 200") {
		t.Errorf("/sick: %+v", got)
	}
	if got := check("/moved", 302); !got.OK {
		t.Errorf("/moved expecting 302 (redirects are not followed): %+v", got)
	}
	h := &manifests.Health{HTTP: &manifests.HTTPCheck{Port: closedPort(t)}, Timeout: "2s"}
	if got := CheckHealth(context.Background(), r, node, h); !got.Checked || got.OK {
		t.Errorf("closed port: %+v", got)
	}
}

// TestHTTPCheckTimeout: a server that never answers fails the check
// within its timeout, not the caller's.
func TestHTTPCheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	host, port := hostPort(t, srv.Listener.Addr().String())
	h := &manifests.Health{HTTP: &manifests.HTTPCheck{Host: host, Port: port}, Timeout: "300ms"}
	start := time.Now()
	got := CheckHealth(context.Background(), newLocalRunner(t), inventory.Target{}, h)
	if got.OK || !got.Checked || time.Since(start) > 3*time.Second {
		t.Errorf("hung server: %+v after %v", got, time.Since(start))
	}
}

// TestExecCheckAlone: the exec check outside a probe, as health gates use it.
func TestExecCheckAlone(t *testing.T) {
	r := newLocalRunner(t)
	cases := []struct {
		h    *manifests.Health
		want HealthResult
	}{
		{execHealth("sh", "-c", `test "$(pwd)" = /`), HealthResult{Checked: true, OK: true, Message: "exit 0"}},
		{execHealth("sh", "-c", "exit 7"), HealthResult{Checked: true, Message: "exit 7"}},
		{execHealth("/nonexistent/check"), HealthResult{Checked: true, Message: "command not found (exit 127)"}},
		{&manifests.Health{Exec: &manifests.ExecCheck{Command: []string{"sleep", "10"}}, Timeout: "1s"}, HealthResult{Checked: true, Message: "timed out (exit 124)"}},
	}
	for _, c := range cases {
		if got := CheckHealth(context.Background(), r, inventory.Target{}, c.h); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.h.Exec.Command, got, c.want)
		}
	}
	if got := CheckHealth(context.Background(), r, inventory.Target{}, nil); got.Checked {
		t.Errorf("no check: %+v", got)
	}
}

// TestEveryHealthKindHasAChecker: each kind of the schema's table
// (manifests.HealthKinds) can be run.
func TestEveryHealthKindHasAChecker(t *testing.T) {
	for _, kind := range manifests.HealthKinds() {
		if c, ok := checkers[kind]; !ok || c.run == nil {
			t.Errorf("health check kind %q has no checker", kind)
		}
	}
	if len(checkers) != len(manifests.HealthKinds()) {
		t.Errorf("%d checkers for %d kinds", len(checkers), len(manifests.HealthKinds()))
	}
}

// TestHealthOfNoKindIsNeverHealthy: a Health that sets no kind (or two)
// fails: the probe is Unknown and a check run alone fails. It read as "no
// check", so the component showed Healthy.
func TestHealthOfNoKindIsNeverHealthy(t *testing.T) {
	local := newLocalRunner(t)
	n := newTestNode(t, local)
	n.receipt("conf", "1")
	for name, h := range map[string]*manifests.Health{
		"none": {},
		"two":  {TCP: &manifests.TCPCheck{Port: 1}, HTTP: &manifests.HTTPCheck{Port: 1}},
	} {
		obs := Probe(context.Background(), local, inventory.Target{Name: "n1"}, n.request(Want{Name: "conf", Version: "1", Health: h}))
		if obs.Known || obs.Reason != inventory.ReasonProbeError || !strings.Contains(obs.Error, "health check") {
			t.Errorf("%s: probe = %+v, want Unknown (probe-error)", name, obs)
		}
		if got := CheckHealth(context.Background(), local, inventory.Target{}, h); !got.Checked || got.OK {
			t.Errorf("%s: CheckHealth = %+v, want a failed check", name, got)
		}
	}
}
