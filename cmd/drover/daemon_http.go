package main

import (
	"net/http"
	"time"

	"github.com/drover-project/drover/console"
)

// Limits of the daemon's HTTP server, so a slow or idle client cannot
// hold connections open: the headers must arrive within 5s and the whole
// request within a minute (the request only: an event stream, a long
// response, outlives it), and a keep-alive connection is
// closed after 2 minutes idle. There is no write timeout: the event
// stream sets one per write instead.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = time.Minute
	httpIdleTimeout       = 2 * time.Minute
)

// newHTTPServer is the daemon's server for handler, refusing Host headers
// that do not name the daemon (console.HostGuard).
func newHTTPServer(handler http.Handler, listen string, allowedHosts []string) *http.Server {
	return &http.Server{
		Handler:           console.HostGuard(listen, allowedHosts, handler),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		IdleTimeout:       httpIdleTimeout,
	}
}
