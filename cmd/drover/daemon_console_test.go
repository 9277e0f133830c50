package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/reconciler/plan"
)

// TestDaemonServesConsole: the daemon serves the console at "/" beside
// the API, its event stream sends the status, and a page left open does
// not hold up the daemon's stop.
func TestDaemonServesConsole(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, stop := inProcessDaemon(t, manifest, filepath.Join(dir, "run"))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(body, []byte("nowhere")) || !bytes.Contains(body, []byte(`id="node-n2"`)) {
		t.Fatalf("GET /: %d %s\n%.400s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if st := getStatus(t, addr); st.Cluster != "nowhere" {
		t.Errorf("the API is gone from the daemon: %+v", st)
	}

	events, err := http.Get("http://" + addr + console.PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	r := bufio.NewReader(events.Body)
	line, err := r.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "event: ") {
		line, err = r.ReadString('\n')
	}
	if err != nil || line != "event: status\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("stop took %s with a console page open", took)
	}
}

// TestDaemonTokenFile: a token file others may read is refused before
// the daemon starts.
func TestDaemonTokenFile(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runDrover(t, "daemon", "-f", manifest, "--lock-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "run"), "--addr", "127.0.0.1:0", "--token-file", tokenFile)
	if code != 1 || !strings.Contains(errs, "chmod 600") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if tok, generated, err := consoleToken(""); err != nil || !generated || len(tok) < 32 {
		t.Errorf("generated token %q %v %v", tok, generated, err)
	}
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, generated, err := consoleToken(tokenFile); err != nil || generated || tok != "0123456789abcdef0123" {
		t.Errorf("token from file %q %v %v", tok, generated, err)
	}
}

func TestConsoleURL(t *testing.T) {
	for _, c := range []struct {
		addr  net.Addr
		token string
		tls   bool
		want  string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464}, "abc_-XYZ", false, "http://127.0.0.1:9464/?token=abc_-XYZ"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9464}, "", false, "http://127.0.0.1:9464/"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, "", false, "http://[::1]:80/"},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 9464}, "a+b", false, "http://10.0.0.5:9464/?token=a%2Bb"},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 9464}, "t", true, "https://10.0.0.5:9464/?token=t"},
	} {
		if got := consoleURL(c.addr, c.token, c.tls); got != c.want {
			t.Errorf("consoleURL(%s, %q) = %q, want %q", c.addr, c.token, got, c.want)
		}
	}
}

// TestAnnounceConsole: a generated token goes to stderr, never to the log.
func TestAnnounceConsole(t *testing.T) {
	var stderr, logs bytes.Buffer
	log := zap.New(zapNewJSONCore(&logs))
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464}
	announceConsole(log, &stderr, addr, "s3cret-s3cret-s3cret", true, webListen{})
	if !strings.Contains(stderr.String(), "http://127.0.0.1:9464/?token=s3cret-s3cret-s3cret") {
		t.Errorf("stderr: %q", stderr.String())
	}
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "http://127.0.0.1:9464/") {
		t.Errorf("log: %q", logs.String())
	}
	stderr.Reset()
	announceConsole(log, &stderr, addr, "from-a-file-from-a-file", false, webListen{})
	if stderr.Len() != 0 {
		t.Errorf("a token from a file was printed: %q", stderr.String())
	}
}

func zapNewJSONCore(w io.Writer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(w), zapcore.InfoLevel)
}

// TestHTTPMuxMountsSetup: the wizard, when given, gets its paths and the
// pages link it; without it those paths are 404 and nothing links them.
func TestHTTPMuxMountsSetup(t *testing.T) {
	src := &fakeAPISource{}
	setup := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("wizard " + r.URL.Path)) })
	for _, withSetup := range []bool{false, true} {
		opts := console.Options{Source: src}
		var h http.Handler
		if withSetup {
			opts.SetupPath, h = setupPath, setup
		}
		mux := httpMux(src, nil, nil, prometheus.NewRegistry(), console.New(opts), h)
		for _, path := range []string{"/setup", "/setup/step", "/api/v1/wizard/preflight"} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if got := rec.Body.String() == "wizard "+path; got != withSetup {
				t.Errorf("setup mounted %v: GET %s = %d %q", withSetup, path, rec.Code, rec.Body.String())
			}
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if linked := strings.Contains(rec.Body.String(), `href="/setup"`); linked != withSetup {
			t.Errorf("setup mounted %v: the page links it: %v", withSetup, linked)
		}
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/status", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cluster": "c1"`) {
			t.Errorf("status beside the console: %d %s", rec.Code, rec.Body.String())
		}
	}
}

type fakeAPISource struct{}

func (fakeAPISource) Status() plan.ClusterStatus {
	return plan.ClusterStatus{Cluster: "c1", Generation: 1}
}
func (fakeAPISource) CurrentPlan() plan.Plan { return plan.Plan{} }
func (fakeAPISource) Ready() bool            { return true }
