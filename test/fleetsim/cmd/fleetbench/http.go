package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

func (d *daemon) status(ctx context.Context) (plan.ClusterStatus, error) {
	var st plan.ClusterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/api/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// streamRates reads the console's event stream, whole-document and
// delta views at once, for window while one node a second starts failing
// its health check (which the daemon sees at its next probe and repairs
// with a restart), and returns each view's bytes per second and how many
// nodes were made to change.
func (d *daemon) streamRates(ctx context.Context, r *run, window time.Duration) (whole, delta float64, changed int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type stream struct{ total, events atomic.Int64 }
	open := func(query string) (*stream, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/api/v1/events"+query, nil)
		if err != nil {
			return nil, err
		}
		resp, err := (&http.Client{}).Do(req) // no timeout: a stream
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("events%s: HTTP %d", query, resp.StatusCode)
		}
		s := &stream{}
		go func() {
			defer resp.Body.Close()
			br := bufio.NewReaderSize(resp.Body, 1<<20)
			for {
				line, err := br.ReadSlice('\n')
				s.total.Add(int64(len(line)))
				if strings.HasPrefix(string(line), "event:") {
					s.events.Add(1)
				}
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
			}
		}()
		return s, nil
	}
	all, err := open("")
	if err != nil {
		return 0, 0, 0, err
	}
	deltas, err := open("?view=delta")
	if err != nil {
		return 0, 0, 0, err
	}
	// The first event of each is the whole document: count from after it.
	deadline := time.Now().Add(time.Minute)
	for (all.events.Load() == 0 || deltas.events.Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	start, a0, d0 := time.Now(), all.total.Load(), deltas.total.Load()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < window {
		<-tick.C
		r.sim.fail((changed * 7919) % r.nodes)
		changed++
	}
	took := time.Since(start).Seconds()
	return float64(all.total.Load()-a0) / took, float64(deltas.total.Load()-d0) / took, changed, nil
}

// waitGeneration waits until every node is converged on a manifest
// loaded after edit (its observed generation is the new one), or timeout
// passes, and returns how many nodes are.
func (d *daemon) waitGeneration(ctx context.Context, n int, sim shards, edit time.Time, timeout time.Duration) (int, error) {
	deadline := edit.Add(timeout)
	done := 0
	for {
		st, err := d.status(ctx)
		if err == nil && st.LastLoadTime.After(edit) {
			done = 0
			for _, node := range st.Nodes {
				if node.Converged && node.ObservedGeneration == st.Hash {
					done++
				}
			}
			if done == n && len(st.Nodes) == n {
				return done, nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				logUnfinished(st)
			}
			return done, nil
		}
		if d.exited() {
			return done, fmt.Errorf("daemon exited:\n%s", d.logTail())
		}
		time.Sleep(2 * time.Second)
	}
}

// logUnfinished says, for a rolling change that did not finish, what the
// first few unfinished nodes were at and why.
func logUnfinished(st plan.ClusterStatus) {
	shown := 0
	for _, n := range st.Nodes {
		if n.Converged && n.ObservedGeneration == st.Hash {
			continue
		}
		last := ""
		if a := n.LastAction; a != nil {
			last = fmt.Sprintf("%s %s %s at %s (%s)", a.Action, a.Component, a.Result, a.Time.Format(time.TimeOnly), a.Message)
		}
		log.Printf("not done: %s: converged %v, generation %.12s, reachable %v, failures %d, waiting %q, in flight %v, last action %s, last probe %s",
			n.Name, n.Converged, n.ObservedGeneration, n.Reachable, n.ConsecutiveFailures, n.Waiting, n.InFlight != nil, last, n.LastProbe.Format(time.TimeOnly))
		if shown++; shown == 5 {
			break
		}
	}
	if st.Rollout.Halted {
		log.Printf("rollout halted: %s", st.Rollout.Reason)
	}
}

// profile saves the daemon's CPU profile over window, then its heap and
// goroutine profiles, as <dir>/<kind>-<nodes>.pprof.
func (d *daemon) profile(dir string, nodes int, window time.Duration) error {
	for _, kind := range []string{"cpu", "heap", "goroutine"} {
		if err := d.profileOne(dir, kind, nodes, window); err != nil {
			return err
		}
	}
	return nil
}

// profileOne saves one profile as <dir>/<kind>-<nodes>.pprof: "cpu",
// "cold" (the cold start's) and "edit" (a manifest edit's) over window,
// "heap", "goroutine".
func (d *daemon) profileOne(dir, kind string, nodes int, window time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := "/debug/pprof/" + kind
	if kind == "cpu" || kind == "cold" || kind == "edit" {
		path = fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds()))
	}
	client := &http.Client{Timeout: window + time.Minute}
	resp, err := client.Get(d.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", kind, nodes)))
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
