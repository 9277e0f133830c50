package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// writeTimeout bounds one write to an event stream: a client that stops
// reading must not hold its handler forever.
const writeTimeout = 10 * time.Second

// serveEvents is a Server-Sent Events stream of the status: an event
// "status" with the status JSON (as GET /api/v1/status) at once and
// whenever it changes, and an event "heartbeat" with the server time when
// nothing changed for a while. It ends when the client goes or the
// console is closed.
//
// Changes are found by polling the status: the controller has no change
// feed, and a status read is cheap next to a probe. The JSON is cached
// for half a poll period, so many open pages cost one read.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case <-c.done:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	if c.open.Add(1) > int64(c.opts.MaxStreams) {
		c.open.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("more than %d event streams open; poll %s instead", c.opts.MaxStreams, "/api/v1/status"), http.StatusServiceUnavailable)
		return
	}
	defer c.open.Add(-1)
	c.streams.Add(1)
	defer c.streams.Done()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer the stream
	w.WriteHeader(http.StatusOK)

	write := func(format string, args ...any) bool {
		// Not every ResponseWriter supports deadlines (httptest's
		// recorder does not); the stream then relies on the client.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// retry: how soon EventSource reconnects after the stream ends.
	if !write("retry: %d\n\n", 2000) {
		return
	}
	poll := time.NewTicker(c.opts.Poll)
	defer poll.Stop()
	heartbeat := time.NewTicker(c.opts.Heartbeat)
	defer heartbeat.Stop()
	var last []byte
	for {
		if snap, err := c.snapshot(); err != nil {
			c.opts.Log.Error("event stream: encode status", zap.Error(err))
			return
		} else if !bytes.Equal(snap, last) {
			if !write("event: status\ndata: %s\n\n", snap) {
				return
			}
			last = snap
			heartbeat.Reset(c.opts.Heartbeat)
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case <-poll.C:
		case now := <-heartbeat.C:
			if !write("event: heartbeat\ndata: %q\n\n", now.UTC().Format(time.RFC3339)) {
				return
			}
		}
	}
}

// snapshot is the status as compact JSON (one line, as an SSE data field
// must be), read at most once per half poll period.
func (c *Console) snapshot() ([]byte, error) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	if c.snap != nil && time.Since(c.snapAt) < c.opts.Poll/2 {
		return c.snap, nil
	}
	b, err := json.Marshal(c.opts.Source.Status())
	if err != nil {
		return nil, err
	}
	c.snap, c.snapAt = b, time.Now()
	return b, nil
}
