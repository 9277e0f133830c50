package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

func TestConnectionReusedAcrossRunsAndDials(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	for i := range 5 {
		if res := mustRun(t, p, tg, "echo "+strconv.Itoa(i)); string(res.Stdout) != strconv.Itoa(i)+"\n" {
			t.Fatalf("run %d: %q", i, res.Stdout)
		}
	}
	echo := startEcho(t)
	c, err := p.DialTCP(ctxT(t), tg, echo)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if st := f.Server.Stats(); st.Accepted != 1 || st.Sessions != 5 {
		t.Errorf("stats %+v, want 1 connection and 5 sessions", st)
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
}

func TestConcurrentFirstUseDialsOnce(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "true", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.Server.Stats().Accepted; n != 1 {
		t.Errorf("%d dials, want 1", n)
	}
}

func TestConnectTimeout(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{HandshakeDelay: time.Hour})
	cfg := baseConfig(f)
	cfg.ConnectTimeout = 300 * time.Millisecond
	p := newPool(t, cfg)
	start := time.Now()
	_, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "true", nil)
	took := time.Since(start)
	wantErr(t, err, ErrTimeout, "timeout")
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %s, want about 300ms", took)
	}
	if !strings.Contains(err.Error(), "n1") || !strings.Contains(err.Error(), f.Server.Addr()) {
		t.Errorf("error does not name node and address: %v", err)
	}
}

func TestRefusedIsUnreachable(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	_, err := p.Run(ctxT(t), Target{Name: "gone", Address: "127.0.0.1", Port: closedPort(t)}, "true", nil)
	wantErr(t, err, ErrUnreachable, "unreachable")
}

func TestDroppedConnectionIsRedialled(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	mustRun(t, p, tg, "true")
	f.Server.DropConnections()
	if res := mustRun(t, p, tg, "echo back"); string(res.Stdout) != "back\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
	if n := f.Server.Stats().Accepted; n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

// What a node asks of drover (a global request, a channel it opens) is
// refused and the connection goes on; the pool serves that itself, so a
// connection runs none of ssh.Client's two goroutines for it (two stacks
// a node: 20,000 at 10,000 nodes).
func TestNodeRequestsRefusedWithoutClientGoroutines(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{AskClient: true})
	mustRun(t, p, tg, "true")
	eventually(t, "the request and the channel refused", func() bool { return f.Server.Stats().Refused == 2 })
	if res := mustRun(t, p, tg, "echo still"); string(res.Stdout) != "still\n" {
		t.Fatalf("stdout %q after the node's asks", res.Stdout)
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"ssh.(*Client).handleGlobalRequests", "ssh.(*Client).handleChannelOpens"} {
		if strings.Contains(stacks, fn) {
			t.Errorf("a goroutine runs %s for a pool connection", fn)
		}
	}
}

// A connection that died unnoticed (no keepalive yet) fails to open a
// session; the pool redials once and the caller never sees it.
func TestBrokenConnectionRetriedOnce(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.KeepAlive = -1
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	mustRun(t, p, tg, "true")
	e, _ := p.entryFor(tg)
	e.mu.Lock()
	stale := e.conn
	e.mu.Unlock()
	// Make the pool hand out a connection whose link is gone but which
	// it has not yet seen die: the session open is what finds out.
	f.Server.DropConnections()
	<-stale.dead
	e.mu.Lock()
	e.conn = &conn{client: stale.client, sessions: stale.sessions, dead: make(chan struct{})}
	e.mu.Unlock()
	mustRun(t, p, tg, "true")
	if n := f.Server.Stats().Accepted; n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

func TestConcurrencyBound(t *testing.T) {
	noAgent(t)
	bin := t.TempDir()
	writeScript(t, filepath.Join(bin, "sudo"), `shift; exec "$@"`)
	f := sshtest.Setup(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
	cfg := baseConfig(f)
	cfg.Concurrency = 3
	p := newPool(t, cfg)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct users are distinct pool entries: 10 dials, 10 sessions.
			tg := targetOf(f.Server, fmt.Sprintf("n%d", i))
			tg.User = fmt.Sprintf("root%d", i) // non-root: sudo -n, via the fake below
			if _, err := p.Run(ctxT(t), tg, "sleep 0.2", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := f.Server.Stats()
	if st.MaxInFlight > 3 || st.MaxInFlight < 2 {
		t.Errorf("max sessions in flight %d, want 2..3 (bound 3)", st.MaxInFlight)
	}
	if st.Accepted != 10 || st.Sessions != 10 {
		t.Errorf("stats %+v, want 10 dials and 10 sessions", st)
	}
}

func TestSessionsPerConnectionBound(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "sleep 0.2", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := f.Server.Stats()
	if st.MaxInFlight > MaxSessionsPerConn || st.MaxInFlight < 2 {
		t.Errorf("max sessions in flight %d, want 2..%d", st.MaxInFlight, MaxSessionsPerConn)
	}
	if st.Accepted != 1 {
		t.Errorf("%d connections, want 1", st.Accepted)
	}
}

func TestDeadNodeDoesNotBlockOthers(t *testing.T) {
	noAgent(t)
	live := sshtest.Setup(t, sshtest.Options{})
	dead := sshtest.Start(t, sshtest.Options{HandshakeDelay: time.Hour})
	sshtest.WriteKnownHosts(t, live.KnownHosts, dead)
	cfg := baseConfig(live)
	cfg.ConnectTimeout = 3 * time.Second
	cfg.Concurrency = 2
	p := newPool(t, cfg)

	deadErr := make(chan error, 2)
	for range 2 { // two callers stuck on the same dead node share one dial
		go func() {
			_, err := p.Run(ctxT(t), targetOf(dead, "dead"), "true", nil)
			deadErr <- err
		}()
	}
	eventually(t, "the dead node's dial", func() bool { return dead.Stats().Accepted == 1 })
	mustRun(t, p, targetOf(live.Server, "live"), "true")
	// The live node was served while the dead node's dial was pending,
	// not after it timed out.
	select {
	case err := <-deadErr:
		t.Fatalf("dead node's callers returned (%v) before the live node was served", err)
	default:
	}
	for range 2 {
		wantErr(t, <-deadErr, ErrTimeout, "timeout")
	}
	if n := dead.Stats().Accepted; n != 1 {
		t.Errorf("dead node dialled %d times, want 1", n)
	}
}

func TestKeepaliveClosesDeadLink(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.KeepAlive = 50 * time.Millisecond
	cfg.ConnectTimeout = 300 * time.Millisecond // also the wait for a keepalive reply
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	// Keepalives go out only while the connection is in use.
	long := make(chan error, 1)
	go func() {
		_, err := p.Run(ctxT(t), tg, "sleep 30", nil)
		long <- err
	}()
	eventually(t, "keepalives", func() bool { return f.Server.Stats().Keepalives >= 2 })
	if p.Connections() != 1 {
		t.Fatalf("answered keepalives closed the connection")
	}
	f.Server.SetKeepaliveReplies(false)
	eventually(t, "the unanswered keepalive to close the connection", func() bool { return p.Connections() == 0 })
	select {
	case err := <-long:
		wantErr(t, err, ErrUnreachable, "unreachable")
	case <-time.After(10 * time.Second):
		t.Fatal("the command on the closed connection did not fail")
	}
	f.Server.SetKeepaliveReplies(true)
	mustRun(t, p, tg, "true")
	if n := f.Server.Stats().Accepted; n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

// TestKeepaliveOnlyWhenQuiet: a connection in use proves itself alive;
// keepalives start once it is quiet.
func TestKeepaliveOnlyWhenQuiet(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.KeepAlive = time.Second
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		mustQuery(t, p, tg, "true")
	}
	// Every KeepAlive would have sent 4; a stall of the machine may let
	// one through.
	if n := f.Server.Stats().Keepalives; n > 1 {
		t.Errorf("%d keepalives on a connection used every 50 ms, want at most 1", n)
	}
	// Idle: none.
	before := f.Server.Stats().Keepalives
	time.Sleep(2500 * time.Millisecond)
	if n := f.Server.Stats().Keepalives - before; n != 0 {
		t.Errorf("%d keepalives on an idle connection", n)
	}
	// A command that runs quiet for longer than KeepAlive: they go out.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := p.Query(ctxT(t), tg, "", "sleep 4"); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, "keepalives under a quiet command", func() bool { return f.Server.Stats().Keepalives >= before+2 })
	<-done
}

func TestIdleConnectionsClosed(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.IdleTimeout = 100 * time.Millisecond
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	// A session longer than IdleTimeout keeps its connection.
	mustRun(t, p, tg, "sleep 0.4")
	if n := f.Server.Stats().Accepted; n != 1 {
		t.Fatalf("busy connection was reaped: %d dials", n)
	}
	eventually(t, "the idle connection to close", func() bool { return p.Connections() == 0 })
	mustRun(t, p, tg, "true")
	if n := f.Server.Stats().Accepted; n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

// Cancelling a context without a deadline relies on signals (TERM, then KILL).
func TestCancelKillsRemoteCommand(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	pidFile := filepath.Join(f.Server.Dir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
		}
		cancelled <- time.Now()
		cancel()
	}()
	_, err := p.Run(ctx, tg, `sleep 30 & echo $! > child.pid.tmp; mv child.pid.tmp child.pid; wait`, nil)
	wantErr(t, err, ErrTimeout, "timeout")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not wrap the context's: %v", err)
	}
	if took := time.Since(<-cancelled); took > 3*time.Second {
		t.Errorf("Run returned %s after the cancel", took)
	}
	waitGone(t, pidFile)
	// The connection survives a cancelled session.
	mustRun(t, p, tg, "true")
	if n := f.Server.Stats().Accepted; n != 1 {
		t.Errorf("%d dials, want 1", n)
	}
}

// A server that ignores signals (as sshd does for root sessions) still
// kills the command once the context's deadline has passed on the node.
func TestDeadlineEnforcedOnNode(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{IgnoreSignals: true})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	mustRun(t, p, tg, "true") // connect first: the budget is for the command
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := p.Run(ctx, tg, `sleep 30 & echo $! > child.pid; wait`, nil)
	wantErr(t, err, ErrTimeout, "timeout")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap the context's: %v", err)
	}
	waitGone(t, filepath.Join(f.Server.Dir(), "child.pid"))
}

// waitGone waits for the process whose pid is in pidFile to end.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remote command to die", func() bool { return !processRunning(pid) })
}

func TestStdinAndLargeOutput(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	in := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	res, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "cat", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != in {
		t.Errorf("stdin did not round-trip: %d bytes back", len(res.Stdout))
	}
}

func TestOutputCap(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	p.maxOutput = 1000
	start := time.Now()
	res, err := p.Run(ctxT(t), targetOf(f.Server, "n1"), "yes", nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("want an output cap error, got %v", err)
	}
	if len(res.Stdout) != 1000 {
		t.Errorf("kept %d bytes, want 1000", len(res.Stdout))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("endless output took %s to stop", took)
	}
	eventually(t, "yes to be killed", func() bool { return f.Server.Stats().InFlight == 0 })
}

func TestSudo(t *testing.T) {
	bin := t.TempDir()
	p, f, core := poolNode(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
	core.User = "core"
	writeScript(t, filepath.Join(bin, "sudo"), `echo "$*" > "$HOME/sudo.args"; [ "$1" = -n ] || exit 99; shift; exec "$@"`)

	// No deadline: the command is exactly sudo -n sh -c <script>.
	res, err := p.Run(context.Background(), core, `echo "it's $((6*7))"`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "it's 42\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
	args, _ := os.ReadFile(filepath.Join(f.Server.Dir(), "sudo.args"))
	if !strings.HasPrefix(string(args), "-n sh -c ") {
		t.Errorf("sudo called with %q", args)
	}

	os.Remove(filepath.Join(f.Server.Dir(), "sudo.args"))
	mustRun(t, p, targetOf(f.Server, "n1"), "true")
	if _, err := os.Stat(filepath.Join(f.Server.Dir(), "sudo.args")); err == nil {
		t.Error("root used sudo")
	}

	writeScript(t, filepath.Join(bin, "sudo"), `echo "sudo: a password is required" >&2; exit 1`)
	_, err = p.Run(ctxT(t), core, "true", nil)
	wantErr(t, err, ErrSudo, "sudo")
	if !strings.Contains(err.Error(), "n1") || !strings.Contains(err.Error(), "core") {
		t.Errorf("error does not name node and user: %v", err)
	}

	os.Remove(filepath.Join(bin, "sudo"))
	if _, err := p.Run(ctxT(t), core, "true", nil); err == nil || !strings.Contains(err.Error(), "sudo is not installed") {
		t.Errorf("want a missing-sudo error, got %v", err)
	}
}

func TestRemoteCommand(t *testing.T) {
	for _, tc := range []struct {
		user   string
		budget time.Duration
		want   string
	}{
		{"root", 0, `exec sh -c 'echo '\''a b'\'''`},
		{"", 0, `exec sh -c 'echo '\''a b'\'''`},
		{"core", 0, `exec sudo -n sh -c 'echo '\''a b'\'''`},
		{"root", 1500 * time.Millisecond, `exec timeout -s KILL 3 sh -c 'echo '\''a b'\'''`},
		{"core", time.Second, `exec sudo -n timeout -s KILL 2 sh -c 'echo '\''a b'\'''`},
	} {
		if got := remoteCommand(Target{User: tc.user}, "echo 'a b'", tc.budget); got != tc.want {
			t.Errorf("user %q budget %s: %s, want %s", tc.user, tc.budget, got, tc.want)
		}
	}
}

func TestDialTCPFromNode(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	cfg := baseConfig(f)
	cfg.IdleTimeout = 50 * time.Millisecond
	p := newPool(t, cfg)
	tg := targetOf(f.Server, "n1")
	c, err := p.DialTCP(ctxT(t), tg, startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	time.Sleep(200 * time.Millisecond) // well past IdleTimeout
	if p.Connections() != 1 {
		t.Error("connection reaped while a forwarded conn was open")
	}
	c.Close()
	eventually(t, "the idle connection to close", func() bool { return p.Connections() == 0 })
	if f.Server.Stats().DirectTCPIP != 1 {
		t.Errorf("stats %+v", f.Server.Stats())
	}

	_, err = p.DialTCP(ctxT(t), tg, "127.0.0.1:"+strconv.Itoa(closedPort(t)))
	var openErr *ssh.OpenChannelError
	if !errors.As(err, &openErr) || Reason(err) != "probe-error" {
		t.Errorf("refused forward: want an OpenChannelError that is not a transport failure, got %v (%s)", err, Reason(err))
	}
}

func TestClosedPool(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	mustRun(t, p, tg, "true")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctxT(t), tg, "true", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if p.Connections() != 0 {
		t.Errorf("Connections() = %d after Close", p.Connections())
	}
}

func TestPoolLeavesNoGoroutines(t *testing.T) {
	noAgent(t)
	opt := goleak.IgnoreCurrent()
	func() {
		f := sshtest.Setup(t, sshtest.Options{})
		defer f.Server.Close()
		cfg := baseConfig(f)
		cfg.KeepAlive = 10 * time.Millisecond
		cfg.IdleTimeout = time.Hour
		p, err := NewPool(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		tg := targetOf(f.Server, "n1")
		mustRun(t, p, tg, "echo hi")
		c, err := p.DialTCP(ctxT(t), tg, startEcho(t))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		p.Run(ctx, tg, "sleep 5", nil)
		// A dial in flight when Close runs is aborted too.
		dead := sshtest.Start(t, sshtest.Options{HandshakeDelay: time.Hour})
		defer dead.Close()
		go p.Run(context.Background(), targetOf(dead, "dead"), "true", nil)
		eventually(t, "the dial", func() bool { return dead.Stats().Accepted == 1 })
	}()
	// The echo listener belongs to the test and ends with it.
	goleak.VerifyNone(t, opt, goleak.IgnoreAnyFunction("github.com/drover-project/drover/inventory.startEcho.func1"))
}

// startEcho listens on loopback and echoes one connection at a time.
func startEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func writeScript(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// processRunning reports whether pid exists and is not a zombie (an
// orphan's zombie waits for init, which may be slow to reap it).
func processRunning(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// A connection cut while a command runs is a transport failure, with the
// output received so far.
func TestConnectionCutMidRun(t *testing.T) {
	noAgent(t)
	f := sshtest.Setup(t, sshtest.Options{})
	p := newPool(t, baseConfig(f))
	tg := targetOf(f.Server, "n1")
	errc := make(chan error, 1)
	var res Result
	go func() {
		var err error
		res, err = p.Run(ctxT(t), tg, "echo partial; sleep 30", nil)
		errc <- err
	}()
	// Cut once "partial" was sent, not merely printed: the server copies
	// the command's output to the channel in its own goroutine.
	eventually(t, "the output to be sent", func() bool {
		return f.Server.Stats().StdoutBytes >= int64(len("partial\n"))
	})
	f.Server.DropConnections()
	err := <-errc
	wantErr(t, err, ErrUnreachable, "unreachable")
	if string(res.Stdout) != "partial\n" {
		t.Errorf("partial output %q", res.Stdout)
	}
	mustRun(t, p, tg, "true")
}
