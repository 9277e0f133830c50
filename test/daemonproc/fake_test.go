package daemonproc

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/console"
)

// fakeEnv makes the test binary, run again by a test, play `drover
// daemon` in the mode it names: "serve", "stubborn" (ignores SIGTERM) or
// "exit" (fails at start).
const fakeEnv = "DAEMONPROC_FAKE"

// generatedToken is what the fake prints when it is given no token file.
const generatedToken = "fake-generated-token-0123456789"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeDaemon(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeDaemon answers what daemonproc asks of the real daemon: /healthz,
// /api/v1/status (only with the token, to prove it is sent), /metrics, a
// JSON log on stderr and the console URL line, SIGHUP and SIGTERM.
func fakeDaemon(mode string, args []string) int {
	logLine := func(msg string, kv ...any) {
		m := map[string]any{"level": "info", "msg": msg}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		fmt.Fprintln(os.Stderr, string(b))
	}
	if len(args) == 0 || args[0] != "daemon" {
		fmt.Fprintln(os.Stderr, "fake: want the daemon subcommand")
		return 2
	}
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	manifest := fs.String("f", "", "")
	listen := fs.String("addr", "", "") // what drover daemon calls its address
	fs.String("lock-dir", "", "")
	fs.String("state-dir", "", "")
	grace := fs.Duration("grace", 0, "")
	tokenFile := fs.String("token-file", "", "")
	extra := fs.String("extra", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "fake: refusing to start")
		return 3
	}
	token := generatedToken
	if *tokenFile != "" {
		fi, err := os.Stat(*tokenFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			fmt.Fprintf(os.Stderr, "fake: token file %v %v\n", fi, err)
			return 1
		}
		b, _ := os.ReadFile(*tokenFile)
		token = strings.TrimSpace(string(b))
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "drover_manifest_load_success 1") })
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(console.HeaderToken) != token {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"cluster":"fake","generation":7,"loadSuccess":true}`)
	})
	go http.Serve(ln, mux)
	logLine("drover daemon started", "manifest", *manifest, "listen", ln.Addr().String(), "grace", grace.String(), "extra", *extra)
	if *tokenFile == "" {
		fmt.Fprintf(os.Stderr, "drover: web console: http://%s/?token=%s\n", ln.Addr(), token)
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			logLine("SIGHUP: re-reading the manifest")
			continue
		}
		logLine("drover daemon stopped")
		return 0
	}
	return 0
}

// useFake makes the processes this test starts play the fake daemon.
func useFake(t *testing.T, mode string) string {
	t.Setenv(fakeEnv, mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// recorder stands in for a test to see what daemonproc fails it with.
// Fatal ends the calling goroutine, so calls that may fail run in their
// own goroutine (run).
type recorder struct {
	testing.TB
	msgs  chan string
	fatal bool
}

func newRecorder(t *testing.T) *recorder { return &recorder{TB: t, msgs: make(chan string, 10)} }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs <- fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.msgs <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// messages is what the code under test reported so far.
func (r *recorder) messages() string {
	var out []string
	for {
		select {
		case m := <-r.msgs:
			out = append(out, m)
		default:
			return strings.Join(out, "\n")
		}
	}
}

// run calls f as a test body would, and returns once f returned or
// failed the test fatally.
func (r *recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		panic("recorder: call did not return")
	}
}
