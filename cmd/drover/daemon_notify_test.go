package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// TestDaemonNotifiesSystemd: under systemd (a $NOTIFY_SOCKET) the daemon
// says READY=1 once the manifest is in force and the HTTP server takes
// requests, feeds the watchdog ($WATCHDOG_USEC), and says
// STOPPING=1 when told to stop.
func TestDaemonNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "300000")
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)).Core()))
	d := &daemon{svc: serviceOptions{stateDir: dir}, file: manifest, listen: "127.0.0.1:0", lockDir: dir, grace: 5 * time.Second}
	addr, stop := runInProcess(t, d, log, logs)

	read := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if msg := read(); !strings.HasPrefix(msg, "READY=1\n") || !strings.Contains(msg, "STATUS=converging") {
		t.Fatalf("first notification %q, want READY=1 with a status", msg)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("ready but not serving: %v", err)
	}
	resp.Body.Close()
	for range 3 {
		if msg := read(); msg != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", msg)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	for {
		msg := read()
		if msg == "STOPPING=1" {
			break
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping", msg)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
