package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHostGuard: a request whose Host names something the daemon was
// not told about (a DNS-rebinding page's) is refused; loopback names,
// IP addresses, the listen host and allowed names are served.
func TestHostGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	h := HostGuard("drover.internal:9464", []string{"console.example.org"}, ok)
	cases := map[string]int{
		"127.0.0.1:9464":          200,
		"127.1.2.3":               200,
		"[::1]:9464":              200,
		"10.0.0.5:9464":           200, // an address: no rebinding
		"localhost:9464":          200,
		"LOCALHOST.":              200,
		"app.localhost:9464":      200,
		"drover.internal:9464":    200,
		"console.example.org":     200,
		"evil.example:9464":       421,
		"evil.example":            421,
		"127.0.0.1.evil.example":  421,
		"localhost.evil.example":  421,
		"drover.internal.evil.io": 421,
		"":                        421,
	}
	for host, want := range cases {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}

// TestEventStreamsCapped: streams past MaxStreams are refused with 503
// (and a Retry-After) instead of holding another connection open; a
// closed stream frees its place.
func TestEventStreamsCapped(t *testing.T) {
	_, srv := serve(t, newFakeSource(), Options{Poll: 20 * time.Millisecond, MaxStreams: 2})
	open := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+PathEvents, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	r1, c1 := open()
	defer c1()
	r2, c2 := open()
	defer c2()
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("first two streams: %d %d", r1.StatusCode, r2.StatusCode)
	}
	r3, c3 := open()
	c3()
	if r3.StatusCode != http.StatusServiceUnavailable || r3.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d, Retry-After %q", r3.StatusCode, r3.Header.Get("Retry-After"))
	}
	c1()
	r1.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r4, c4 := open()
		code := r4.StatusCode
		c4()
		r4.Body.Close()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place was not freed: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventStreamOutlivesReadTimeout: the daemon's server has a
// ReadTimeout; net/http applies it to reading the request only, so an
// event stream (a long response) outlives it. This keeps it so.
func TestEventStreamOutlivesReadTimeout(t *testing.T) {
	c := New(Options{Source: newFakeSource(), Poll: 20 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	srv := httptest.NewUnstartedServer(c.Handler())
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer c.Close()
	resp, err := http.Get(srv.URL + PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan sseEvent, 100)
	go readEvents(resp.Body, events)
	next(t, events, "status")
	time.Sleep(600 * time.Millisecond) // three ReadTimeouts
	for drained := false; !drained; {
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatal("the stream ended at the server's ReadTimeout")
			}
		default:
			drained = true
		}
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended at the server's ReadTimeout")
			}
			if ev.name == "heartbeat" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat after the ReadTimeout")
		}
	}
}
