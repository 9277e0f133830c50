package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drover-project/drover/reconciler"
)

func (d *daemon) status(ctx context.Context) (reconciler.ClusterStatus, error) {
	var st reconciler.ClusterStatus
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

// streamRate reads the console's event stream for window while one node
// a second starts failing its health check (which the daemon sees at its
// next probe and repairs with a restart), and returns the stream's bytes
// per second and how many nodes were made to change.
func (d *daemon) streamRate(ctx context.Context, r *run, window time.Duration) (float64, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/api/v1/events", nil)
	if err != nil {
		return 0, 0, err
	}
	client := &http.Client{} // no timeout: a stream
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("events: HTTP %d", resp.StatusCode)
	}
	var total atomic.Int64
	var events atomic.Int64
	go func() {
		br := bufio.NewReaderSize(resp.Body, 1<<20)
		for {
			line, err := br.ReadSlice('\n')
			total.Add(int64(len(line)))
			if strings.HasPrefix(string(line), "event:") {
				events.Add(1)
			}
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
		}
	}()
	// The first event is the whole document: count from after it.
	deadline := time.Now().Add(time.Minute)
	for events.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	start, b0 := time.Now(), total.Load()
	changed := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < window {
		<-tick.C
		r.sim.fail((changed * 7919) % r.nodes)
		changed++
	}
	took := time.Since(start)
	return float64(total.Load()-b0) / took.Seconds(), changed, nil
}

// waitGeneration waits until every node is converged on a manifest
// loaded after edit: its observed generation is the new one.
func (d *daemon) waitGeneration(ctx context.Context, n int, sim shards, edit time.Time, timeout time.Duration) error {
	deadline := edit.Add(timeout)
	var last string
	for {
		st, err := d.status(ctx)
		if err == nil && st.LastLoadTime.After(edit) {
			done := 0
			for _, node := range st.Nodes {
				if node.Converged && node.ObservedGeneration == st.Hash {
					done++
				}
			}
			if done == n && len(st.Nodes) == n {
				return nil
			}
			last = fmt.Sprintf("%d of %d nodes on the new manifest, %d steps so far", done, n, sim.stats().Steps)
		} else if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rolling change not done after %s: %s\n%s", timeout, last, d.logTail())
		}
		if d.exited() {
			return fmt.Errorf("daemon exited:\n%s", d.logTail())
		}
		time.Sleep(time.Second)
	}
}

// profile saves the daemon's CPU profile over window, then its heap and
// goroutine profiles, as <dir>/<kind>-<nodes>.pprof.
func (d *daemon) profile(dir string, nodes int, window time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range []struct{ kind, path string }{
		{"cpu", fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds()))},
		{"heap", "/debug/pprof/heap"},
		{"goroutine", "/debug/pprof/goroutine"},
	} {
		client := &http.Client{Timeout: window + time.Minute}
		resp, err := client.Get(d.base + p.path)
		if err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", p.kind, nodes)))
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
