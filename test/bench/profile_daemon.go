package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profileDaemon takes, from the daemon binary itself (started with
// --pprof), a CPU profile of a window of its steady state and a heap
// profile, into -cpuprofile-dir. It runs after the measured window: a
// profile being taken costs the daemon CPU the measurement would count.
func (b *bench) profileDaemon(ctx context.Context, d *daemonProc, window time.Duration) error {
	if err := os.MkdirAll(b.cfg.profileDir, 0o755); err != nil {
		return err
	}
	cpu0, err := d.cpu()
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds()))
	if err := d.save(ctx, path, filepath.Join(b.cfg.profileDir, "daemon-steady.pprof")); err != nil {
		return err
	}
	cpu1, err := d.cpu()
	if err != nil {
		return err
	}
	b.logf("daemon profiled: %s CPU in %s (%.2f%% of a core); profiles in %s", fmtDur(cpu1-cpu0), window, 100*(cpu1-cpu0).Seconds()/window.Seconds(), b.cfg.profileDir)
	return d.save(ctx, "/debug/pprof/heap?gc=1", filepath.Join(b.cfg.profileDir, "daemon-heap.pprof"))
}

// save writes what the daemon serves at path to the file to.
func (d *daemonProc) save(ctx context.Context, path, to string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return err
	}
	// A CPU profile takes its whole window to answer.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s", path, resp.Status)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
