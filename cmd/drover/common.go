package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// addManifestFlag adds the -f flag every cluster command takes; DROVER_FILE
// stands in for it.
func addManifestFlag(cmd *cobra.Command, file *string) {
	def := os.Getenv(envFile)
	cmd.Flags().StringVarP(file, "file", "f", def, "path of the cluster manifest (required; env "+envFile+")")
	if def == "" {
		_ = cmd.MarkFlagRequired("file")
	}
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
}

// compile loads a manifest and compiles it, with errors that say where.
func compile(path string) (*manifests.Loaded, *plan.Desired, error) {
	l, err := manifests.Load(path)
	return compileLoaded(path, l, err)
}

// compileLoaded compiles what loading the manifest at path gave.
func compileLoaded(path string, l *manifests.Loaded, err error) (*manifests.Loaded, *plan.Desired, error) {
	if err != nil {
		return nil, nil, describeLoadError(path, err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, d, nil
}

// sshConfigFile is --ssh-config, which every command takes.
var sshConfigFile string

// newPool builds the SSH pool the manifest's ssh settings describe, with
// the operator's ssh_config for what they leave unset.
func newPool(c *manifests.Cluster, log *zap.Logger) (*inventory.Pool, error) {
	cfg, err := inventory.PoolConfig(c.Spec.SSH, sshConfigFile, log)
	if err != nil {
		return nil, err
	}
	return inventory.NewPool(cfg, log)
}

// newReadOnlyPool is newPool for commands that only look (plan, probe):
// they never record a host key, even with ssh.acceptNewHostKeys, so
// trusting a first-seen key is always something apply or the daemon
// does. A node with an unknown key is reported as such.
func newReadOnlyPool(c *manifests.Cluster, log *zap.Logger) (*inventory.Pool, error) {
	cfg, err := inventory.PoolConfig(c.Spec.SSH, sshConfigFile, log)
	if err != nil {
		return nil, err
	}
	cfg.AcceptNewHostKeys = false
	return inventory.NewPool(cfg, log)
}

// cliLogger is readable console output for interactive commands; only
// warnings and errors unless verbose.
func cliLogger(verbose bool) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.TimeKey = ""
	cfg.CallerKey = ""
	cfg.StacktraceKey = ""
	level := zapcore.WarnLevel
	if verbose {
		level = zapcore.DebugLevel
	}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.Lock(os.Stderr), level)
	return zap.New(core)
}

// isTerminal reports whether f is an interactive terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
