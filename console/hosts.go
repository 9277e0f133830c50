package console

import (
	"net"
	"net/http"
	"strings"
)

// HostGuard serves a request only when its Host header names this
// daemon: a loopback name or address, any IP address, the host of the
// listen address, or one of allowed. Anything else is refused with 421.
//
// Reads need no token, which is safe only while the reader is someone who
// can reach the listen address. DNS rebinding breaks that for browsers: a
// page at evil.example re-points evil.example at 127.0.0.1 and, being
// same-origin with it, reads the status, the plan and the event stream.
// Its requests carry Host: evil.example, so refusing names this daemon
// was not told about stops it. An IP address in Host is no rebinding
// (the page's origin is then that address itself).
func HostGuard(listen string, allowed []string, next http.Handler) http.Handler {
	names := map[string]bool{"localhost": true}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		names[strings.ToLower(host)] = true
	}
	for _, a := range allowed {
		names[strings.ToLower(strings.TrimSuffix(a, "."))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, names) {
			http.Error(w, "unknown Host header: this daemon answers to its address, localhost, or a name given with --allowed-host", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hostAllowed(hostport string, names map[string]bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil {
		return true
	}
	return names[host] || strings.HasSuffix(host, ".localhost")
}
