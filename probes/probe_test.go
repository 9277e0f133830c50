package probes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// funcRunner is a Runner made of two functions, for transport failures.
type funcRunner struct {
	run  func(ctx context.Context, t inventory.Target, script string) (inventory.Result, error)
	dial func(ctx context.Context, t inventory.Target, addr string) (net.Conn, error)
}

func (f funcRunner) Run(ctx context.Context, t inventory.Target, script string, _ io.Reader) (inventory.Result, error) {
	return f.run(ctx, t, script)
}

func (f funcRunner) DialTCP(ctx context.Context, t inventory.Target, addr string) (net.Conn, error) {
	if f.dial == nil {
		return nil, errors.New("no dialing here")
	}
	return f.dial(ctx, t, addr)
}

// TestProbe runs a whole probe through the local runner: the real script
// plus tcp and http checks against real loopback listeners.
func TestProbe(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	var accepted sync.WaitGroup
	accepted.Go(func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	defer accepted.Wait()
	defer tcp.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	_, tcpPort := hostPort(t, tcp.Addr().String())
	_, webPort := hostPort(t, web.Listener.Addr().String())

	local := newLocalRunner(t)
	n := newTestNode(t, local)
	for _, c := range []string{"zk", "web", "api", "tools"} {
		n.receipt(c, "1.0")
		n.pkg(c, "1.0", true)
		n.activate(c, "1.0")
	}
	n.unit("zk", "[Service]\n", "active running enabled")
	n.unit("web", "[Service]\n", "active running enabled")
	n.unit("api", "[Service]\n", "inactive dead enabled")
	cfg := filepath.Join(n.root, "packages/zk/1.0/zoo.cfg")
	n.write(cfg, "tickTime=2000\n", 0o644)
	req := n.request(
		Want{Name: "zk", Version: "1.0", Service: true, Files: []string{cfg}, Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: tcpPort}, Timeout: "2s"}},
		Want{Name: "web", Version: "1.0", Service: true, Health: &manifests.Health{HTTP: &manifests.HTTPCheck{Port: webPort, Path: "/ready", ExpectStatus: 200}, Timeout: "2s"}},
		Want{Name: "api", Version: "1.0", Service: true, Health: &manifests.Health{HTTP: &manifests.HTTPCheck{Port: webPort, Path: "/ready"}}},
		Want{Name: "tools", Version: "1.0", Health: execHealth("true")},
		Want{Name: "later", Version: "2.0", Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: tcpPort}}},
	)

	// The script waits for the tcp and http dials: if the checks ran after
	// it rather than beside it, this would time out.
	dialled := make(chan string, 8)
	r := funcRunner{
		run: func(ctx context.Context, tg inventory.Target, script string) (inventory.Result, error) {
			for range 3 { // zk, web, later (api's check runs too, and is discarded)
				select {
				case <-dialled:
				case <-time.After(5 * time.Second):
					return inventory.Result{}, errors.New("health checks did not run beside the script")
				}
			}
			return local.Run(ctx, tg, script, nil)
		},
		dial: func(ctx context.Context, tg inventory.Target, addr string) (net.Conn, error) {
			dialled <- addr
			return local.DialTCP(ctx, tg, addr)
		},
	}
	before := time.Now()
	obs := Probe(context.Background(), r, inventory.Target{Name: "n1", Address: "127.0.0.1"}, req)
	if !obs.Known || obs.Node != "n1" || obs.Reason != "" || obs.ProbedAt.Before(before) || obs.Duration <= 0 {
		t.Fatalf("probe = %+v", obs)
	}
	want := map[string]HealthResult{
		"zk":    {Checked: true, OK: true, Message: fmt.Sprintf("tcp 127.0.0.1:%d: connected", tcpPort)},
		"web":   {Checked: true, OK: true, Message: fmt.Sprintf("GET http://127.0.0.1:%d/ready: status 200", webPort)},
		"api":   {Message: "not checked: unit is inactive"},
		"tools": {Checked: true, OK: true, Message: "exit 0"},
		"later": {Message: "not checked: not installed"},
	}
	for name, w := range want {
		if got := obs.Components[name].Health; got != w {
			t.Errorf("%s health = %+v, want %+v", name, got, w)
		}
	}
	zk := obs.Components["zk"]
	wantHash := manifests.ConfigHash(manifests.Digests([]manifests.RenderedFile{{Path: cfg, Mode: 0o644, Content: []byte("tickTime=2000\n")}}))
	if zk.Receipt.Version != "1.0" || zk.Active != "1.0" || zk.FilesHash != wantHash {
		t.Errorf("zk = %+v (want files hash %s)", zk, wantHash)
	}
}

// truncatingRunner runs the real script and hands back only the first
// keep bytes of its output, optionally with an error, as a connection
// dropped half-way would.
type truncatingRunner struct {
	*localRunner
	keep int
	err  error
}

func (r truncatingRunner) Run(ctx context.Context, t inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	res, err := r.localRunner.Run(ctx, t, script, stdin)
	if err != nil {
		return res, err
	}
	res.Stdout = res.Stdout[:min(r.keep, len(res.Stdout))]
	return res, r.err
}

// TestProbeCutOffIsUnknown: wherever the output stops, the probe is
// Unknown, never a partial answer.
func TestProbeCutOffIsUnknown(t *testing.T) {
	local := newLocalRunner(t)
	n := newTestNode(t, local)
	n.receipt("zk", "1.0")
	n.pkg("zk", "1.0", true)
	n.activate("zk", "1.0")
	req := n.request(Want{Name: "zk", Version: "1.0"})
	full := Probe(context.Background(), local, inventory.Target{Name: "n1"}, req)
	if !full.Known {
		t.Fatalf("full probe: %+v", full)
	}
	s, _ := Script(req)
	res, _ := local.Run(context.Background(), inventory.Target{}, s, nil)
	size := len(res.Stdout)
	for _, keep := range []int{0, 10, size / 3, size / 2, size - 6, size - 1} {
		obs := Probe(context.Background(), truncatingRunner{local, keep, nil}, inventory.Target{Name: "n1"}, req)
		if obs.Known || obs.Reason != "probe-error" || obs.Components != nil || obs.Error == "" {
			t.Errorf("cut at %d of %d bytes: %+v", keep, size, obs)
		}
	}
	dropped := fmt.Errorf("session: connection lost: %w", inventory.ErrUnreachable)
	obs := Probe(context.Background(), truncatingRunner{local, size / 2, dropped}, inventory.Target{Name: "n1"}, req)
	if obs.Known || obs.Reason != "unreachable" || obs.Components != nil || !strings.Contains(obs.Error, "connection lost") {
		t.Errorf("dropped connection: %+v", obs)
	}
}

func TestProbeTransportFailures(t *testing.T) {
	req := Request{InstallRoot: "/opt/drover", Components: []Want{{Name: "zk", Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}}}}}
	cases := []struct {
		name       string
		run        func(ctx context.Context) (inventory.Result, error)
		ctxTimeout time.Duration
		reason     string
		errPart    string
	}{
		{"host key", func(context.Context) (inventory.Result, error) {
			return inventory.Result{}, fmt.Errorf("dial n1: %w: fingerprint SHA256:abc", inventory.ErrHostKey)
		}, 0, "hostkey", "SHA256:abc"},
		{"auth", func(context.Context) (inventory.Result, error) {
			return inventory.Result{}, fmt.Errorf("dial n1: %w", inventory.ErrAuth)
		}, 0, "auth", "authentication failed"},
		{"sudo", func(context.Context) (inventory.Result, error) {
			return inventory.Result{}, fmt.Errorf("run: %w", inventory.ErrSudo)
		}, 0, "sudo", "sudo"},
		{"timeout", func(ctx context.Context) (inventory.Result, error) {
			<-ctx.Done()
			return inventory.Result{}, ctx.Err()
		}, 50 * time.Millisecond, "timeout", "deadline"},
		{"script failed", func(context.Context) (inventory.Result, error) {
			return inventory.Result{ExitCode: 2, Stderr: []byte("sh: 1: syntax error\n")}, nil
		}, 0, "probe-error", "exited 2: sh: 1: syntax error"},
		{"not our output", func(context.Context) (inventory.Result, error) {
			return inventory.Result{Stdout: []byte("Welcome to the node!\n")}, nil
		}, 0, "probe-error", "not drover probe output"},
		{"component missing from output", func(context.Context) (inventory.Result, error) {
			return inventory.Result{Stdout: []byte("drover-probe 2\nos id=- version_id=- arch=- hostname=- free=-\ndone\n")}, nil
		}, 0, "probe-error", "no block for component zk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.ctxTimeout)
				defer cancel()
			}
			r := funcRunner{
				run: func(ctx context.Context, _ inventory.Target, _ string) (inventory.Result, error) { return c.run(ctx) },
				// The tcp check blocks until the probe gives up on it.
				dial: func(ctx context.Context, _ inventory.Target, _ string) (net.Conn, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				},
			}
			obs := Probe(ctx, r, inventory.Target{Name: "n1"}, req)
			if obs.Known || obs.Reason != c.reason || !strings.Contains(obs.Error, c.errPart) || obs.Node != "n1" || obs.Components != nil {
				t.Errorf("probe = %+v, want reason %s and error containing %q", obs, c.reason, c.errPart)
			}
		})
	}
	bad := Probe(context.Background(), funcRunner{}, inventory.Target{Name: "n1"}, Request{InstallRoot: "relative"})
	if bad.Known || bad.Reason != "probe-error" || !strings.Contains(bad.Error, "build probe script") {
		t.Errorf("bad request: %+v", bad)
	}
}

// TestProbeAll: every target answered, never more than parallel at once.
func TestProbeAll(t *testing.T) {
	const parallel = 3
	var inFlight, peak atomic.Int32
	out := []byte("drover-probe 2\nos id=debian version_id=12 arch=x86_64 hostname=h free=1\ndone\n")
	r := funcRunner{run: func(ctx context.Context, tg inventory.Target, _ string) (inventory.Result, error) {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		if tg.Name == "down" {
			return inventory.Result{}, fmt.Errorf("dial: %w", inventory.ErrUnreachable)
		}
		return inventory.Result{Stdout: out}, nil
	}}
	var targets []inventory.Target
	reqs := map[string]Request{}
	for i := range 10 {
		name := fmt.Sprintf("n%d", i)
		targets = append(targets, inventory.Target{Name: name})
		reqs[name] = Request{InstallRoot: "/opt/drover"}
	}
	targets = append(targets, inventory.Target{Name: "down"}, inventory.Target{Name: "norequest"})
	reqs["down"] = Request{InstallRoot: "/opt/drover"}
	got := ProbeAll(context.Background(), r, targets, reqs, parallel)
	if len(got) != len(targets) {
		t.Fatalf("got %d results for %d targets", len(got), len(targets))
	}
	for i := range 10 {
		if o := got[fmt.Sprintf("n%d", i)]; !o.Known || o.OS.Hostname != "h" {
			t.Errorf("n%d: %+v", i, o)
		}
	}
	if o := got["down"]; o.Known || o.Reason != "unreachable" {
		t.Errorf("down: %+v", o)
	}
	if o := got["norequest"]; o.Known || o.Reason != "probe-error" {
		t.Errorf("norequest: %+v", o)
	}
	if p := peak.Load(); p > parallel || p < 2 {
		t.Errorf("peak concurrency %d, want 2..%d", p, parallel)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, o := range ProbeAll(ctx, r, targets[:2], reqs, 1) {
		if o.Known {
			t.Errorf("%s probed after cancel: %+v", name, o)
		}
	}
}

// TestProbeLocalFilesystemUnchanged guards the rule that probing changes
// nothing on the node.
func TestProbeLocalFilesystemUnchanged(t *testing.T) {
	local := newLocalRunner(t)
	n := newTestNode(t, local)
	n.receipt("zk", "1")
	before := listTree(t, local.dir)
	Probe(context.Background(), local, inventory.Target{Name: "n1"}, n.request(Want{Name: "zk", Files: []string{filepath.Join(n.root, "x")}}))
	after := listTree(t, local.dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("probe changed the node:\nbefore %v\nafter  %v", before, after)
	}
}

func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = fmt.Sprint(info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return out
}

// TestProbeDoesNotWaitForPointlessChecks: on a node without the component
// a hanging tcp check is cancelled as soon as the script has answered.
func TestProbeDoesNotWaitForPointlessChecks(t *testing.T) {
	local := newLocalRunner(t)
	n := newTestNode(t, local)
	req := n.request(Want{Name: "zk", Service: true, Health: &manifests.Health{TCP: &manifests.TCPCheck{Host: "127.0.0.1", Port: 1}, Timeout: "5m"}})
	r := funcRunner{
		run: func(ctx context.Context, tg inventory.Target, script string) (inventory.Result, error) {
			return local.Run(ctx, tg, script, nil)
		},
		dial: func(ctx context.Context, _ inventory.Target, _ string) (net.Conn, error) {
			<-ctx.Done() // a node that never answers
			return nil, ctx.Err()
		},
	}
	start := time.Now()
	obs := Probe(context.Background(), r, inventory.Target{Name: "n1"}, req)
	if !obs.Known || obs.Components["zk"].Health != (HealthResult{Message: "not checked: unit is inactive"}) {
		t.Errorf("probe = %+v, zk = %+v", obs, obs.Components["zk"])
	}
	// Far below the check's 5m timeout, on however loaded a machine.
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("probe took %v: it waited for a check that could not apply", d)
	}
}
