package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
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
// With ?view=delta (what the console's pages ask for) only the first
// event is the whole status; after it, an event "delta" carries the
// cluster-level fields, the nodes whose state changed and the names of
// nodes no longer in the manifest (see statusDelta). A node's probe
// times alone are not a change: at 10,000 nodes and a 30 s interval
// every second brings 333 new probes, and re-sending them is what made
// the whole-document stream megabytes a second.
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
	delta := r.URL.Query().Get("view") == "delta"
	var seen map[string]uint64 // delta view: each node's key as last sent
	var seenHead []byte
	var last []byte
	for {
		if delta {
			ev, err := c.nextDelta(&seen, &seenHead)
			if err != nil {
				c.opts.Log.Error("event stream: encode status", zap.Error(err))
				return
			}
			if ev != "" {
				if !write("%s", ev) {
					return
				}
				heartbeat.Reset(c.opts.Heartbeat)
			}
		} else if snap, err := c.snapshot(); err != nil {
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

// statusDelta is the data of a "delta" event: the status with only the
// nodes that changed since the stream's last event (in manifest order)
// and the names of the nodes that left the manifest.
type statusDelta struct {
	plan.ClusterStatus
	Removed []string `json:"removed,omitempty"`
}

// nodeSnapshot is the status cut for delta streams: the cluster-level
// fields as JSON, each node's JSON, and a key per node that changes only
// when what the node shows changes (not its probe times).
type nodeSnapshot struct {
	at    time.Time
	st    plan.ClusterStatus
	head  []byte // the status without its nodes
	full  []byte // the whole status, made on demand
	nodes map[string]int
	keys  []uint64 // by index in st.Nodes
}

// nodeKey hashes what a node shows but its probe times, which change on
// every probe.
func nodeKey(n plan.NodeStatus) (uint64, error) {
	n.LastProbe, n.LastConverged, n.LastProbeAttempt, n.ProbeDuration = time.Time{}, time.Time{}, time.Time{}, 0
	b, err := json.Marshal(n)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64(), nil
}

// deltaSnapshot is the status cut for delta streams, shared by every
// stream for half a poll period.
func (c *Console) deltaSnapshot() (*nodeSnapshot, error) {
	c.nodeSnapMu.Lock()
	defer c.nodeSnapMu.Unlock()
	if s := c.nodeSnap; s != nil && time.Since(s.at) < c.opts.Poll/2 {
		return s, nil
	}
	st := c.opts.Source.Status()
	s := &nodeSnapshot{at: time.Now(), st: st, nodes: make(map[string]int, len(st.Nodes)), keys: make([]uint64, len(st.Nodes))}
	for i, n := range st.Nodes {
		k, err := nodeKey(n)
		if err != nil {
			return nil, err
		}
		s.nodes[n.Name], s.keys[i] = i, k
	}
	head := st
	head.Nodes = nil
	var err error
	if s.head, err = json.Marshal(head); err != nil {
		return nil, err
	}
	c.nodeSnap = s
	return s, nil
}

// nextDelta is the next event of a delta stream: the whole status first
// (seen nil), then a "delta" with what changed since seen and seenHead,
// or "" when nothing did. It updates seen and seenHead.
func (c *Console) nextDelta(seen *map[string]uint64, seenHead *[]byte) (string, error) {
	s, err := c.deltaSnapshot()
	if err != nil {
		return "", err
	}
	if *seen == nil {
		*seen = make(map[string]uint64, len(s.keys))
		for i, n := range s.st.Nodes {
			(*seen)[n.Name] = s.keys[i]
		}
		*seenHead = s.head
		c.nodeSnapMu.Lock()
		if s.full == nil {
			s.full, err = json.Marshal(s.st)
		}
		full := s.full
		c.nodeSnapMu.Unlock()
		if err != nil {
			return "", err
		}
		return "event: status\ndata: " + string(full) + "\n\n", nil
	}
	d := statusDelta{ClusterStatus: s.st}
	d.Nodes = nil
	for i, n := range s.st.Nodes {
		if k, ok := (*seen)[n.Name]; !ok || k != s.keys[i] {
			d.Nodes = append(d.Nodes, n)
		}
	}
	for name := range *seen {
		if _, ok := s.nodes[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}
	if len(d.Nodes) == 0 && len(d.Removed) == 0 && bytes.Equal(s.head, *seenHead) {
		return "", nil
	}
	slices.Sort(d.Removed)
	for _, name := range d.Removed {
		delete(*seen, name)
	}
	for _, n := range d.Nodes {
		(*seen)[n.Name] = s.keys[s.nodes[n.Name]]
	}
	*seenHead = s.head
	if d.Nodes == nil {
		d.Nodes = []plan.NodeStatus{}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return "event: delta\ndata: " + string(b) + "\n\n", nil
}
