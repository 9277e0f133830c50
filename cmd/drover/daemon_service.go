package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drover-project/drover/state"
)

// What running as a system service adds to `drover daemon`: default
// paths that follow systemd's directories, the log format and level, and
// the state store.

// Paths of the packaged service (packaging/): the manifest in
// ConfigurationDirectory=drover, the lock in RuntimeDirectory=drover,
// the state in StateDirectory=drover.
const (
	defaultManifest = "/etc/drover/cluster.yaml"
	defaultLockDir  = "/run/drover"
	defaultStateDir = "/var/lib/drover"
)

// serviceOptions are the daemon's service flags.
type serviceOptions struct {
	stateDir  string
	webConfig string
	logFormat string
	logLevel  string
}

// addDaemonManifestFlag is -f for the daemon, which defaults to the
// packaged service's manifest instead of being required.
func addDaemonManifestFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", envDefault(envFile, defaultManifest), "path of the cluster manifest (env "+envFile+")")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
}

// addServiceFlags adds the service flags; lockDir is the daemon's
// --lock-dir, whose default follows systemd's RUNTIME_DIRECTORY.
func addServiceFlags(cmd *cobra.Command, o *serviceOptions, lockDir *string) {
	cmd.Flags().StringVar(lockDir, "lock-dir", systemdDir("RUNTIME_DIRECTORY", defaultLockDir),
		"where the lock that stops a second daemon on the same manifest lives (systemd's $RUNTIME_DIRECTORY when set)")
	cmd.Flags().StringVar(&o.stateDir, "state-dir", systemdDir("STATE_DIRECTORY", defaultStateDir),
		"where the daemon keeps what it decided across restarts: halts, action history, backoff (systemd's $STATE_DIRECTORY when set)")
	cmd.Flags().StringVar(&o.webConfig, "web.config.file", "",
		"Prometheus exporter web config for --addr: TLS, client certificates, basic auth (https://prometheus.io/docs/prometheus/latest/configuration/https/)")
	_ = cmd.MarkFlagFilename("web.config.file", "yml", "yaml")
	cmd.Flags().StringVar(&o.logFormat, "log-format", "json", "log format: json (one object a line) or console (for people)")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	_ = cmd.Flags().SetAnnotation("lock-dir", cobra.BashCompSubdirsInDir, []string{})
	_ = cmd.MarkFlagDirname("state-dir")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"json", "console"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
}

// systemdDir is the first folder systemd passes in env (it separates
// several with ':'), else def.
func systemdDir(env, def string) string {
	if v, _, _ := strings.Cut(os.Getenv(env), ":"); v != "" {
		return v
	}
	return def
}

// logger is the daemon's logger. Unsampled: one line per action is the
// audit trail, and sampling would drop lines of a large rollout. No
// stack traces: a rejected manifest or a failed action is not a bug in
// drover (a recovered panic logs its own stack).
func (o serviceOptions) logger() (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(o.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch o.logFormat {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, fmt.Errorf("--log-format %q: want json or console", o.logFormat)
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	return cfg.Build()
}

// manifestKey names a manifest for its lock and its state file: its
// directory with symlinks resolved plus its name, so another path to
// the same directory is the same manifest, while a ConfigMap's `..data`
// swap (which moves the file's target, not its directory) does not
// change it.
func manifestKey(manifest string) string {
	key := manifest
	if d, err := filepath.EvalSymlinks(filepath.Dir(manifest)); err == nil {
		key = filepath.Join(d, filepath.Base(manifest))
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// openStateStore opens the manifest's state file in dir. It is taken
// after the manifest's lock, so a store held open is another process
// (`drover` run by hand on a copy of the state dir, say): wait a little,
// then say so.
func openStateStore(dir, manifest string) (*state.Bolt, error) {
	if dir == "" {
		return nil, errors.New("--state-dir is empty")
	}
	return state.OpenBolt(filepath.Join(dir, "state-"+manifestKey(manifest)+".db"), 5*time.Second)
}
