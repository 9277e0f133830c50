// Package e2edaemon runs the real `drover daemon` as a subprocess against
// real systemd nodes (test/harness) and checks what issue 6 and 7 promise:
// editing the manifest (rewrite, rename as vim does, a ConfigMap symlink
// swap) rolls out a node_exporter upgrade or downgrade with no command run;
// invalid, emptied and deleted manifests change nothing; drift is repaired
// within a probe interval; an unreachable node is reported while the rest
// converge; a daemon killed mid-rollout and restarted finishes it; SIGTERM
// lets the running action finish; and a real Prometheus with the shipped
// rules fires and resolves the unreachable and not-converged alerts.
//
// One cluster of three nodes is booted in TestMain and shared; each test
// starts its own daemon on its own manifest and first brings the cluster to
// the state it needs. The tests need root and skip under -short.
package e2edaemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// suite is what every test of the package shares.
type suite struct {
	c       *harness.Cluster
	old     harness.Artifact // node_exporter 1.8.2
	new     harness.Artifact // node_exporter 1.9.1
	drover  string           // the binary built for this run
	work    string           // temp dir: binary, lock dir, daemon logs
	lockDir string
	err     error

	closeOnce sync.Once
}

var shared *suite

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() || os.Geteuid() != 0 {
		return m.Run() // every test skips
	}
	s := newSuite()
	shared = s
	defer s.close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "e2edaemon: interrupted, stopping the nodes")
			s.close()
			os.Exit(2)
		}
	}()
	defer func() { signal.Stop(sigs); close(sigs) }()
	return m.Run()
}

func newSuite() *suite {
	s := &suite{}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "drover-e2edaemon-")
	if err != nil {
		s.err = err
		return s
	}
	s.work, s.lockDir = work, filepath.Join(work, "lock")

	var wg sync.WaitGroup
	var buildErr, artErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.drover = filepath.Join(work, "drover")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", s.drover, "github.com/drover-project/drover/cmd/drover")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build drover: %w\n%s", err, out)
		}
	}()
	go func() {
		defer wg.Done()
		arts, err := harness.Artifacts(ctx)
		if err != nil {
			artErr = err
			return
		}
		s.old, s.new = arts[harness.ArtifactNodeExporterOld], arts[harness.ArtifactNodeExporterNew]
	}()
	c, bootErr := harness.BootSystemd(ctx, harness.Options{N: 3, Name: "ed", Logf: logf})
	wg.Wait()
	if bootErr == nil {
		s.c = c
	}
	s.err = errors.Join(bootErr, buildErr, artErr)
	logf("suite ready in %v (err %v)", since(start), s.err)
	return s
}

func (s *suite) close() {
	s.closeOnce.Do(func() {
		if s.c != nil {
			if err := s.c.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "e2edaemon: closing the cluster: %v\n", err)
			}
		}
		if s.work != "" && os.Getenv("DROVER_E2E_KEEP") == "" {
			os.RemoveAll(s.work)
		}
	})
}

// setup is every test's first line.
func setup(t *testing.T) *suite {
	t.Helper()
	if testing.Short() {
		t.Skip("e2edaemon: skipped in -short mode")
	}
	harness.RequireRoot(t)
	if shared == nil {
		t.Fatal("e2edaemon: the suite was not set up")
	}
	if shared.err != nil {
		t.Fatalf("e2edaemon: suite setup failed: %v", shared.err)
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), since(start)) })
	return shared
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2edaemon: "+format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
