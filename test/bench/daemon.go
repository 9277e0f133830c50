package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// daemonProc is `drover daemon` running as a subprocess of the bench,
// with its JSON log lines (zap, on stderr) read as they come.
type daemonProc struct {
	cmd     *exec.Cmd
	pid     int
	base    string // http://host:port
	logPath string
	http    *http.Client

	mu     sync.Mutex
	loaded []logEvent // "manifest loaded" lines
	listen chan string
	readWG sync.WaitGroup
	exited chan struct{}
	err    error
}

// logEvent is one zap log line, as much as the bench reads of it.
type logEvent struct {
	Time       time.Time
	Msg        string
	Generation string
}

// startDaemon starts the binary's daemon on manifest with its HTTP API on
// a free loopback port and waits until it serves. extra are more flags.
func startDaemon(ctx context.Context, bin, manifest, lockDir, logPath string, extra ...string) (*daemonProc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	args := append([]string{"daemon", "-f", manifest, "--addr", "127.0.0.1:0", "--lock-dir", lockDir, "--state-dir", lockDir, "--grace", "10s"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	// The daemon dies with the bench, whatever happens to the bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		logFile.Close()
		return nil, err
	}
	w.Close()
	d := &daemonProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, listen: make(chan string, 1), exited: make(chan struct{}),
		http: &http.Client{Timeout: 30 * time.Second}}
	d.readWG.Add(1)
	go func() {
		defer d.readWG.Done()
		defer logFile.Close()
		d.readLog(io.TeeReader(r, logFile))
		r.Close()
	}()
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	select {
	case addr := <-d.listen:
		d.base = "http://" + addr
		return d, nil
	case <-d.exited:
		d.readWG.Wait()
		return nil, fmt.Errorf("drover daemon exited at start: %v\n%s", d.err, fileTail(logPath, 2000))
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	d.stop()
	return nil, fmt.Errorf("drover daemon did not start serving\n%s", fileTail(logPath, 2000))
}

func (d *daemonProc) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct {
			TS         float64 `json:"ts"`
			Msg        string  `json:"msg"`
			Listen     string  `json:"listen"`
			Generation string  `json:"generation"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		sec, frac := math.Modf(l.TS)
		ev := logEvent{Time: time.Unix(int64(sec), int64(frac*1e9)), Msg: l.Msg, Generation: l.Generation}
		switch l.Msg {
		case "drover daemon started":
			select {
			case d.listen <- l.Listen:
			default:
			}
		case "manifest loaded":
			d.mu.Lock()
			d.loaded = append(d.loaded, ev)
			d.mu.Unlock()
		}
	}
}

// loadedAfter is the first "manifest loaded" line logged after t.
func (d *daemonProc) loadedAfter(t time.Time) (logEvent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.loaded {
		if e.Time.After(t) {
			return e, true
		}
	}
	return logEvent{}, false
}

func (d *daemonProc) get(ctx context.Context, path string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if into == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(into)
}

func (d *daemonProc) status(ctx context.Context) (plan.ClusterStatus, error) {
	var st plan.ClusterStatus
	code, err := d.get(ctx, "/api/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status: HTTP %d", code)
	}
	return st, err
}

// waitConverged polls the status until every node is converged with
// want (component -> version) observed, or the timeout passes.
func (d *daemonProc) waitConverged(ctx context.Context, nodes int, want map[string]string, every, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		st, err := d.status(ctx)
		if err == nil {
			last = convergedText(st, nodes, want)
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon: cluster not converged after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.exited:
			return fmt.Errorf("daemon exited: %v\n%s", d.err, fileTail(d.logPath, 2000))
		case <-time.After(every):
		}
	}
}

// convergedText says why the status is not converged, "" when it is.
func convergedText(st plan.ClusterStatus, nodes int, want map[string]string) string {
	if len(st.Nodes) != nodes {
		return fmt.Sprintf("%d nodes in status, want %d", len(st.Nodes), nodes)
	}
	bad := 0
	first := ""
	for _, n := range st.Nodes {
		ok := n.Converged
		for _, c := range n.Components {
			if v, w := want[c.Name]; w && c.ObservedVersion != v {
				ok = false
			}
		}
		if !ok {
			bad++
			if first == "" {
				first = n.Name + ": " + n.Reason
			}
		}
	}
	if bad == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d nodes not converged (%s)", bad, nodes, first)
}

// procTimes is the daemon's user+system CPU time so far.
func (d *daemonProc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b), clockTicks())
}

// parseStatCPU reads utime+stime (fields 14 and 15) from /proc/PID/stat;
// the fields are counted after the command name, which may hold spaces.
func parseStatCPU(stat string, hz int64) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(hz), nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// memory is VmHWM (peak RSS) and VmRSS of the daemon, in bytes.
func (d *daemonProc) memory() (peak, now int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			peak = kb << 10
		case "VmRSS:":
			now = kb << 10
		}
	}
	return peak, now, nil
}

// stop sends SIGTERM (SIGKILL after 30s) and waits for the daemon and
// its log reader.
func (d *daemonProc) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.readWG.Wait()
	var ee *exec.ExitError
	if d.err != nil && !errors.As(d.err, &ee) {
		return d.err
	}
	return nil
}
