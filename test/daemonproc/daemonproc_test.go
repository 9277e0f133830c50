package daemonproc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartWithGeneratedToken(t *testing.T) {
	bin := useFake(t, "serve")
	logDir := t.TempDir()
	d := Start(t, Options{Binary: bin, Manifest: "/nonexistent/cluster.yaml", LogDir: logDir, Args: []string{"--extra", "x"}})

	if d.Token() != generatedToken {
		t.Errorf("token %q, want the printed %q", d.Token(), generatedToken)
	}
	if want := "http://" + d.Addr() + "/?token=" + generatedToken; d.ConsoleURL() != want {
		t.Errorf("console URL %q, want %q", d.ConsoleURL(), want)
	}
	if !strings.HasPrefix(d.Addr(), "127.0.0.1:") {
		t.Errorf("listens on %s, want loopback", d.Addr())
	}
	if dir := filepath.Dir(d.LogPath()); dir != logDir || !strings.HasPrefix(filepath.Base(d.LogPath()), t.Name()+"-") {
		t.Errorf("log at %s, want a file named after the test in %s", d.LogPath(), logDir)
	}
	// The fake answers only with the token: Status sends it.
	if st := d.Status(); st.Cluster != "fake" || st.Generation != 7 || !st.LoadSuccess {
		t.Errorf("status %+v", st)
	}
	if m := d.Metrics(); !strings.Contains(m, "drover_manifest_load_success 1") {
		t.Errorf("metrics: %q", m)
	}
	if _, err := d.Get("/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("GET of a missing path: %v, want a 404 error", err)
	}
	if !d.LogHas(map[string]string{"msg": "drover daemon started", "grace": "1m0s", "extra": "x"}) {
		t.Errorf("no start line with the grace and extra flag:\n%s", d.Tail(10))
	}
	if d.LogHas(map[string]string{"msg": "drover daemon started", "grace": "2m0s"}) {
		t.Error("LogHas matched a line whose field differs")
	}

	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "the SIGHUP logged", func() bool {
		return d.LogHas(map[string]string{"msg": "SIGHUP: re-reading the manifest"})
	})
	lines := d.LogLines() // the console URL line is skipped, not an error
	if len(lines) != 2 || lines[0]["msg"] != "drover daemon started" {
		t.Errorf("log lines %v", lines)
	}
	if !d.Running() {
		t.Fatal("the daemon is not running")
	}

	d.Stop()
	if code, exited := d.ExitedWithin(time.Second); !exited || code != 0 {
		t.Errorf("after Stop: exited %v, code %d", exited, code)
	}
	if !d.LogHas(map[string]string{"msg": "drover daemon stopped"}) {
		t.Error("Stop did not let the daemon stop on SIGTERM")
	}
}

func TestStartWithGivenToken(t *testing.T) {
	bin := useFake(t, "serve")
	d := Start(t, Options{Binary: bin, Manifest: "m.yaml", Token: "given-token-0123456789", Grace: 5 * time.Second})
	if d.ConsoleURL() != "" || d.Token() != "given-token-0123456789" {
		t.Errorf("console URL %q, token %q", d.ConsoleURL(), d.Token())
	}
	// The fake refuses a token file others may read and answers status
	// only with its token.
	if st := d.Status(); st.Cluster != "fake" {
		t.Errorf("status %+v", st)
	}
	if !d.LogHas(map[string]string{"grace": "5s"}) {
		t.Errorf("grace not passed:\n%s", d.Tail(5))
	}
}

func TestOwnProcessGroupAndKill(t *testing.T) {
	bin := useFake(t, "serve")
	d := Start(t, Options{Binary: bin, Manifest: "m.yaml"})
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(d.Pid()) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp ...: comm has no spaces here.
	f := strings.Fields(string(stat))
	if f[4] != strconv.Itoa(d.Pid()) {
		t.Errorf("process group %s, want its own (%d)", f[4], d.Pid())
	}
	d.Kill()
	if d.Running() {
		t.Fatal("running after Kill")
	}
	if code, exited := d.ExitedWithin(time.Second); !exited || code != -1 {
		t.Errorf("after SIGKILL: exited %v, code %d, want -1 (killed by a signal)", exited, code)
	}
	if d.LogHas(map[string]string{"msg": "drover daemon stopped"}) {
		t.Error("a killed daemon had time to stop in order")
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	bin := useFake(t, "stubborn")
	r := newRecorder(t)
	p := StartProc(r, ProcOptions{Name: "stubborn", Path: bin, LogPath: filepath.Join(t.TempDir(), "log"),
		Args: []string{"daemon", "--addr", FreeAddr(t)}, StopAfter: 300 * time.Millisecond})
	WaitFor(t, 10*time.Second, "the fake to start", func() bool { return strings.Contains(p.Tail(5), "drover daemon started") })
	start := time.Now()
	r.run(p.Stop)
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
		t.Errorf("Stop took %v, want SIGKILL after the 300ms grace", took)
	}
	if msg := r.messages(); !strings.Contains(msg, "ignored SIGTERM for 300ms; killing it") {
		t.Errorf("Stop reported %q", msg)
	}
}

func TestStartFailsWhenTheDaemonExits(t *testing.T) {
	bin := useFake(t, "exit")
	r := newRecorder(t)
	r.run(func() { Start(r, Options{Binary: bin, Manifest: "m.yaml"}) })
	msg := r.messages()
	if !r.fatal || !strings.Contains(msg, "exited: exit status 3") || !strings.Contains(msg, "fake: refusing to start") {
		t.Errorf("fatal %v, message %q: want the exit and the log's tail", r.fatal, msg)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	r := newRecorder(t)
	calls := 0
	start := time.Now()
	r.run(func() { WaitFor(r, 600*time.Millisecond, "nothing", func() bool { calls++; return false }) })
	if msg := r.messages(); !r.fatal || msg != "timed out after 600ms waiting for nothing" {
		t.Errorf("fatal %v, message %q", r.fatal, msg)
	}
	if took := time.Since(start); took < 600*time.Millisecond || calls < 3 {
		t.Errorf("gave up after %v and %d calls", took, calls)
	}
}

func TestLogPathsDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	a, b := newLogPath(t, dir), newLogPath(t, dir)
	if a == b || filepath.Dir(a) != dir || filepath.Base(a) != t.Name()+"-1.log" || filepath.Base(b) != t.Name()+"-2.log" {
		t.Errorf("log paths %s, %s", a, b)
	}
}
