// Package e2e runs the real drover binary against real systemd nodes
// (test/harness): fresh install of a DC/OS-like cluster, plan, upgrades
// within maxUnavailable, drift repair, failed upgrades rolled back, a bad
// checksum, removal, idempotence, a killed apply, and a ZooKeeper ensemble
// that keeps its quorum through a rolling change.
//
// One cluster of five nodes (three masters, two agents) is booted once in
// TestMain and shared; every test first puts the cluster into the state it
// needs. The tests need root and skip under -short.
package e2e

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

// Roles of the five nodes, by index.
const (
	numMasters = 3
	numAgents  = 2
)

// suite is the cluster every test of the package shares.
type suite struct {
	c       *harness.Cluster
	arts    map[string]harness.Artifact
	drover  string // the drover binary built for this run
	work    string // temp dir for the binary
	masters []harness.Node
	agents  []harness.Node
	err     error // why the suite could not be set up

	closeOnce sync.Once
}

// shared is set once by TestMain before any test runs and never replaced;
// tests reach it through setup.
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
	// Ctrl-C or a kill of `go test` still takes the nodes down: Close here,
	// and the harness's parent-death signal and reaping cover a SIGKILL.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "e2e: interrupted, stopping the nodes")
			s.close()
			os.Exit(2)
		}
	}()
	defer func() { signal.Stop(sigs); close(sigs) }()
	return m.Run()
}

// newSuite builds drover and the artifacts and boots the nodes. Errors are
// kept in s.err so that every test fails with the reason.
func newSuite() *suite {
	s := &suite{}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "drover-e2e-")
	if err != nil {
		s.err = err
		return s
	}
	s.work = work

	var wg sync.WaitGroup
	var buildErr, artErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		t0 := time.Now()
		s.drover = filepath.Join(work, "drover")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", s.drover, "github.com/drover-project/drover/cmd/drover")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build drover: %w\n%s", err, out)
			return
		}
		logf("built drover in %v", since(t0))
	}()
	go func() {
		defer wg.Done()
		t0 := time.Now()
		s.arts, artErr = harness.Artifacts(ctx)
		logf("artifacts ready in %v", since(t0))
	}()
	t0 := time.Now()
	c, bootErr := harness.BootSystemd(ctx, harness.Options{N: numMasters + numAgents, Name: "e2e", Logf: logf})
	wg.Wait()
	if bootErr == nil {
		s.c = c
		s.masters = c.Nodes[:numMasters]
		s.agents = c.Nodes[numMasters:]
		logf("booted %d systemd nodes in %v", len(c.Nodes), since(t0))
	}
	s.err = errors.Join(bootErr, buildErr, artErr)
	logf("suite ready in %v (err %v)", since(start), s.err)
	return s
}

// close stops the nodes and removes the work dir; safe to call twice.
func (s *suite) close() {
	s.closeOnce.Do(func() {
		if s.c != nil {
			t0 := time.Now()
			if err := s.c.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: closing the cluster: %v\n", err)
			}
			logf("nodes stopped in %v", since(t0))
		}
		if s.work != "" {
			os.RemoveAll(s.work)
		}
	})
}

// setup is every test's first line: it skips when the suite cannot run
// here and fails when it should have but could not be set up.
func setup(t *testing.T) *suite {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	harness.RequireRoot(t)
	if shared == nil {
		t.Fatal("e2e: the suite was not set up (TestMain did not run?)")
	}
	if shared.err != nil {
		t.Fatalf("e2e: suite setup failed: %v", shared.err)
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), since(start)) })
	return shared
}

func (s *suite) nodes() []harness.Node { return s.c.Nodes }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
