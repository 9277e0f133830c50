package main

import (
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

// TestDaemonDefaultsFollowSystemd: with no flags the daemon reads the
// packaged manifest, and its lock and state dirs are systemd's
// RuntimeDirectory and StateDirectory when it sets them (the first of
// several), else /run/drover and /var/lib/drover.
func TestDaemonDefaultsFollowSystemd(t *testing.T) {
	for _, c := range []struct {
		runtime, state      string
		wantLock, wantState string
	}{
		{"", "", "/run/drover", "/var/lib/drover"},
		{"/run/drover", "/var/lib/drover:/var/lib/other", "/run/drover", "/var/lib/drover"},
		{"/run/x", "/srv/state", "/run/x", "/srv/state"},
	} {
		t.Setenv("RUNTIME_DIRECTORY", c.runtime)
		t.Setenv("STATE_DIRECTORY", c.state)
		cmd := newDaemonCommand()
		f := cmd.Flags()
		if got := f.Lookup("file").DefValue; got != "/etc/drover/cluster.yaml" {
			t.Errorf("-f default %q", got)
		}
		if got := f.Lookup("lock-dir").DefValue; got != c.wantLock {
			t.Errorf("RUNTIME_DIRECTORY=%q: --lock-dir default %q, want %q", c.runtime, got, c.wantLock)
		}
		if got := f.Lookup("state-dir").DefValue; got != c.wantState {
			t.Errorf("STATE_DIRECTORY=%q: --state-dir default %q, want %q", c.state, got, c.wantState)
		}
	}
}

// TestServiceLogger: --log-format and --log-level, and what a bad value
// says.
func TestServiceLogger(t *testing.T) {
	log, err := serviceOptions{logFormat: "console", logLevel: "warn"}.logger()
	if err != nil {
		t.Fatal(err)
	}
	if log.Core().Enabled(zapcore.InfoLevel) || !log.Core().Enabled(zapcore.WarnLevel) {
		t.Error("--log-level warn logs info, or not warnings")
	}
	if _, err := (serviceOptions{logFormat: "json", logLevel: "debug"}).logger(); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		o    serviceOptions
		want string
	}{
		{serviceOptions{logFormat: "xml", logLevel: "info"}, `--log-format "xml": want json or console`},
		{serviceOptions{logFormat: "json", logLevel: "loud"}, "--log-level"},
	} {
		if _, err := c.o.logger(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}
