// Package e2econsole drives the web console of a real `drover daemon`
// with a real headless Chromium (Debian's chromium, through chromedp)
// while the daemon manages three real systemd nodes (test/harness), and
// checks what issue 9 promises of the console: the cluster page shows
// every node converged; after a manifest edit it shows the rollout
// progressing and then converged without a reload; a node cut off turns
// unreachable on the page; the node page shows facts, receipts and
// actions; the page stays usable on a narrow screen. A screenshot of each
// step is saved under ./artifacts (or $DROVER_TEST_ARTIFACTS).
//
// The tests need root (the harness does) and skip without it, or under
// -short. A missing Chromium is a failure, never a skip.
package e2econsole

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

// suite is what the package's tests share: the nodes, the artifacts and
// the drover binary built for this run.
type suite struct {
	c      *harness.Cluster
	old    harness.Artifact // node_exporter 1.8.2
	new    harness.Artifact // node_exporter 1.9.1
	drover string
	work   string // temp dir: binary, lock dir, manifests, daemon logs
	err    error

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
			fmt.Fprintln(os.Stderr, "e2econsole: interrupted, stopping the nodes")
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
	work, err := os.MkdirTemp("", "drover-e2econsole-")
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
	c, bootErr := harness.BootSystemd(ctx, harness.Options{N: 3, Name: "ec", Logf: logf})
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
				fmt.Fprintf(os.Stderr, "e2econsole: closing the cluster: %v\n", err)
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
		t.Skip("e2econsole: skipped in -short mode")
	}
	harness.RequireRoot(t)
	if shared == nil {
		t.Fatal("e2econsole: the suite was not set up")
	}
	if shared.err != nil {
		t.Fatalf("e2econsole: suite setup failed: %v", shared.err)
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), since(start)) })
	return shared
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2econsole: "+format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
