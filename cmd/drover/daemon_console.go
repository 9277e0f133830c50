package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
)

// consoleToken is the token mutating console endpoints require: read from
// --token-file, or generated for this run. generated says it must be shown.
func consoleToken(tokenFile string) (token string, generated bool, err error) {
	if tokenFile != "" {
		token, err = console.ReadTokenFile(tokenFile)
		return token, false, err
	}
	token, err = console.GenerateToken()
	return token, true, err
}

// httpMux is everything the daemon serves on --addr: the API (metrics,
// health, status, plan), when ctl is not nil the control endpoints
// (suspend, resume, retry, reconcile) behind guard, the web console and,
// when setup is not nil, the setup wizard on /setup, /setup/ and
// /api/v1/wizard/ (its writes behind the console's guard:
// wizard.Options.Guard = guard.Require).
func httpMux(src api.Source, ctl api.Control, guard func(http.Handler) http.Handler, gatherer prometheus.Gatherer, con *console.Console, setup http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	api.Register(mux, src, gatherer)
	if ctl != nil {
		api.RegisterControl(mux, ctl, guard)
	}
	con.Register(mux)
	if setup != nil {
		mux.Handle(setupPath, setup)
		mux.Handle(setupPath+"/", setup)
		mux.Handle("/api/v1/wizard/", setup)
	}
	return mux
}

// registerPprof serves Go's profiles (CPU, heap, goroutines) under
// /debug/pprof/, for `go tool pprof http://ADDR/debug/pprof/profile`.
// Only with --pprof: a CPU profile costs the daemon while it runs, and the
// endpoints take no token.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// setupPath is where the setup wizard lives, linked from every page.
const setupPath = "/setup"

// consoleURL is where an operator opens the console: the listen address,
// with a loopback host for an unspecified one (0.0.0.0 is no address to
// browse to), and the token when there is one to hand over.
func consoleURL(addr net.Addr, token string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/"}
	if token != "" {
		u.RawQuery = url.Values{"token": {token}}.Encode()
	}
	return u.String()
}

// announceConsole prints the console's URL once. A generated token is
// printed to stderr, not logged: logs are often shipped and kept where
// more people read them than should change the cluster.
func announceConsole(log *zap.Logger, stderr io.Writer, addr net.Addr, token string, generated bool, w webListen) {
	if stderr == nil {
		stderr = os.Stderr
	}
	if generated {
		fmt.Fprintf(stderr, "drover: web console: %s\n", consoleURL(addr, token, w.tls))
	}
	log.Info("web console", zap.String("url", consoleURL(addr, "", w.tls)), zap.Bool("tokenGenerated", generated))
	w.warnBeyondLoopback(log, addr)
}
