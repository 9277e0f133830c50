package daemonproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/reconciler/plan"
)

// Options say how to run `drover daemon`.
type Options struct {
	Binary   string // the drover binary under test; required
	Manifest string // -f; it need not exist yet
	// LockDir is --lock-dir: daemons on one manifest that must see each
	// other's lock share it. Default: a temp dir of the test.
	LockDir string
	// StateDir is --state-dir; default: LockDir/state, so a daemon
	// started again on the same manifest finds what the last one kept.
	StateDir string
	// Grace is --grace; default 60s. Stop waits Grace and 30s more before
	// SIGKILL.
	Grace time.Duration
	// Token, when set, is handed to the daemon in a --token-file. Else the
	// daemon generates one and Start reads it from the console URL the
	// daemon prints.
	Token string
	// LogPath receives the daemon's output. Default: a new file named after
	// the test in LogDir (default: a temp dir of the test).
	LogPath string
	LogDir  string
	// Args are more flags, e.g. --artifacts-dir.
	Args []string
	// StartTimeout bounds Start's wait for /healthz; default 60s.
	StartTimeout time.Duration
	// Addr is --listen; default a free port on 127.0.0.1.
	Addr string
}

// Daemon is one `drover daemon` subprocess serving on a loopback port.
type Daemon struct {
	*Proc
	addr       string
	token      string
	consoleURL string
}

// consoleURLRE finds the one line the daemon prints for a human: the
// console's URL with a generated token, kept out of the JSON log.
var consoleURLRE = regexp.MustCompile(`(?m)^drover: web console: (http://\S+)`)

// Start runs `drover daemon` on a free 127.0.0.1 port and waits until it
// serves /healthz (and, with a generated token, has printed its console
// URL). The test's cleanup stops it if it still runs.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	if opts.Grace == 0 {
		opts.Grace = 60 * time.Second
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.LockDir == "" {
		opts.LockDir = filepath.Join(t.TempDir(), "lock")
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(opts.LockDir, "state")
	}
	if opts.LogPath == "" {
		opts.LogPath = newLogPath(t, opts.LogDir)
	}
	if opts.Addr == "" {
		opts.Addr = FreeAddr(t)
	}
	d := &Daemon{addr: opts.Addr, token: opts.Token}
	args := []string{"daemon", "-f", opts.Manifest, "--addr", d.addr, "--lock-dir", opts.LockDir, "--state-dir", opts.StateDir, "--grace", opts.Grace.String()}
	if opts.Token != "" {
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(opts.Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--token-file", tokenFile)
	}
	d.Proc = StartProc(t, ProcOptions{
		Name: "daemon", Path: opts.Binary, Args: append(args, opts.Args...),
		LogPath: opts.LogPath, StopAfter: opts.Grace + 30*time.Second,
	})
	d.WaitUntil(opts.StartTimeout, "/healthz and the console URL", func() bool {
		if d.token == "" && !d.readConsoleURL() {
			return false
		}
		return d.healthy()
	})
	return d
}

// newLogPath is a log file in dir named after the test, numbered so that
// a test's second daemon does not overwrite its first one's log.
func newLogPath(t testing.TB, dir string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	base := strings.ReplaceAll(t.Name(), "/", "_")
	for i := 1; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.log", base, i))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		return path
	}
}

// readConsoleURL takes the console URL and its token from the log once
// the daemon has printed it.
func (d *Daemon) readConsoleURL() bool {
	b, _ := os.ReadFile(d.LogPath())
	m := consoleURLRE.FindSubmatch(b)
	if m == nil {
		return false
	}
	u, err := url.Parse(string(m[1]))
	if err != nil {
		return false
	}
	d.consoleURL, d.token = u.String(), u.Query().Get("token")
	return true
}

func (d *Daemon) healthy() bool {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(d.URL("/healthz"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Addr is the host:port the daemon listens on.
func (d *Daemon) Addr() string { return d.addr }

// URL is the daemon's URL for path ("/api/v1/status").
func (d *Daemon) URL(path string) string { return "http://" + d.addr + path }

// ConsoleURL is the URL, with the token, that the daemon printed; empty
// when the token was given in Options.
func (d *Daemon) ConsoleURL() string { return d.consoleURL }

// Token is the daemon's console token.
func (d *Daemon) Token() string { return d.token }

// Get fetches path with the console token; a status other than 200 is an
// error.
func (d *Daemon) Get(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL(path), nil)
	if err != nil {
		return nil, err
	}
	if d.token != "" {
		req.Header.Set(console.HeaderToken, d.token)
	}
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

// Status is GET /api/v1/status decoded; any failure fails the test.
func (d *Daemon) Status() plan.ClusterStatus {
	d.t.Helper()
	b, err := d.Get("/api/v1/status")
	if err != nil {
		d.t.Fatalf("status: %v\n%s", err, b)
	}
	var st plan.ClusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		d.t.Fatalf("status: %v\n%s", err, b)
	}
	return st
}

// Metrics is the daemon's /metrics exposition; any failure fails the test.
func (d *Daemon) Metrics() string {
	d.t.Helper()
	b, err := d.Get("/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	return string(b)
}

// LogLines are the daemon's log lines decoded. Every line but the
// console URL must be JSON; one that is not is an error of the test.
func (d *Daemon) LogLines() []map[string]any {
	d.t.Helper()
	f, err := os.Open(d.LogPath())
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if consoleURLRE.Match(sc.Bytes()) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			d.t.Errorf("daemon log line is not JSON: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		d.t.Errorf("reading the daemon log: %v", err)
	}
	return out
}

// LogHas reports whether a JSON log line has every given field value
// (compared as fmt.Sprint prints it).
func (d *Daemon) LogHas(fields map[string]string) bool {
	b, _ := os.ReadFile(d.LogPath())
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
