package harness

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
)

// DefaultSuiteTimeout bounds a suite's setup in Main: building drover and
// the artifacts while the nodes boot, on a cold cache and a busy machine.
const DefaultSuiteTimeout = 20 * time.Minute

// KeepWorkEnv, when set to anything, keeps a suite's work dir (the drover
// binary, daemon logs) after the run, for a look at what happened.
const KeepWorkEnv = "DROVER_E2E_KEEP"

// SuiteOptions say what an end-to-end suite boots.
type SuiteOptions struct {
	// Name prefixes the suite's progress lines and messages and names its
	// temp work dir ("e2edaemon" gives drover-e2edaemon-*).
	Name string
	// Nodes is how many systemd nodes to boot, NodeName the short prefix
	// of their cluster's name (Options.Name).
	Nodes    int
	NodeName string
	// Timeout bounds the setup that Main runs; default DefaultSuiteTimeout.
	// Boot itself is bounded by the context it is given.
	Timeout time.Duration
	// WorkDir receives the drover binary. Default: a new temp dir, which
	// Close removes unless KeepWorkEnv is set; a given dir is left alone.
	WorkDir string
	// Logf receives progress lines; default stderr, prefixed with Name.
	Logf func(format string, args ...any)
}

// Suite is what the tests of one end-to-end package share: systemd nodes,
// the test artifacts and the drover binary built for this run. A test
// package makes one with NewSuite, runs Main from TestMain and calls
// Setup first in every test; a package with a single test may call Boot
// and Close itself instead.
type Suite struct {
	Cluster   *Cluster
	Artifacts map[string]Artifact
	Drover    string // the drover binary built for this run
	Work      string // the work dir (see SuiteOptions.WorkDir)
	// Err is why the suite could not be set up; every test fails with it.
	Err error

	opts      SuiteOptions
	ownWork   bool
	booted    bool
	closeOnce sync.Once
	closeErr  error
}

// NewSuite returns a suite not booted yet.
func NewSuite(opts SuiteOptions) *Suite {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultSuiteTimeout
	}
	if opts.Logf == nil {
		name := opts.Name
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, name+": "+format+"\n", args...)
		}
	}
	return &Suite{opts: opts}
}

// Main is TestMain's body: it boots the suite, runs the tests and closes
// the suite, and returns the exit code for os.Exit. Under -short or
// without root nothing is booted and every test skips in Setup.
func (s *Suite) Main(m *testing.M) int {
	flag.Parse()
	if testing.Short() || os.Geteuid() != 0 {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	s.Boot(ctx)
	cancel()
	defer s.Close()
	// Ctrl-C or a kill of `go test` still takes the nodes down: Close here,
	// and the harness's parent-death signal and reaping cover a SIGKILL.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintf(os.Stderr, "%s: interrupted, stopping the nodes\n", s.opts.Name)
			s.Close()
			os.Exit(2)
		}
	}()
	defer func() { signal.Stop(sigs); close(sigs) }()
	return m.Run()
}

// Boot builds drover and the artifacts while it boots the nodes. Errors
// are kept in s.Err, so that every test can fail with the reason.
func (s *Suite) Boot(ctx context.Context) {
	s.booted = true
	start := time.Now()
	logf := s.opts.Logf
	s.Work = s.opts.WorkDir
	if s.Work == "" {
		work, err := os.MkdirTemp("", "drover-"+s.opts.Name+"-")
		if err != nil {
			s.Err = fmt.Errorf("suite work dir: %w", err)
			return
		}
		s.Work, s.ownWork = work, true
	}
	s.Drover = filepath.Join(s.Work, "drover")

	var wg sync.WaitGroup
	var buildErr, artErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		t0 := time.Now()
		buildErr = BuildDrover(ctx, s.Drover)
		logf("built drover in %v", sinceRounded(t0))
	}()
	go func() {
		defer wg.Done()
		t0 := time.Now()
		s.Artifacts, artErr = Artifacts(ctx)
		logf("artifacts ready in %v", sinceRounded(t0))
	}()
	t0 := time.Now()
	c, bootErr := BootSystemd(ctx, Options{N: s.opts.Nodes, Name: s.opts.NodeName, Logf: logf})
	wg.Wait()
	if bootErr == nil {
		s.Cluster = c
		logf("booted %d systemd nodes in %v", len(c.Nodes), sinceRounded(t0))
	}
	s.Err = errors.Join(bootErr, buildErr, artErr)
	logf("suite ready in %v (err %v)", sinceRounded(start), s.Err)
}

// Close stops the nodes and removes a work dir of the suite's own; safe
// to call twice (it returns the first result).
func (s *Suite) Close() error {
	s.closeOnce.Do(func() {
		if s.Cluster != nil {
			t0 := time.Now()
			if err := s.Cluster.Close(); err != nil {
				s.closeErr = fmt.Errorf("closing the cluster: %w", err)
				fmt.Fprintf(os.Stderr, "%s: %v\n", s.opts.Name, s.closeErr)
			}
			s.opts.Logf("nodes stopped in %v", sinceRounded(t0))
		}
		if s.ownWork && os.Getenv(KeepWorkEnv) == "" {
			os.RemoveAll(s.Work)
		}
	})
	return s.closeErr
}

// Setup is every test's first line: it skips when the suite cannot run
// here (-short, not root) and fails when it should have but could not be
// set up. It logs how long the test took.
func (s *Suite) Setup(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: skipped in -short mode", s.opts.Name)
	}
	RequireRoot(t)
	if !s.booted {
		t.Fatalf("%s: the suite was not set up (TestMain did not run?)", s.opts.Name)
	}
	if s.Err != nil {
		t.Fatalf("%s: suite setup failed: %v", s.opts.Name, s.Err)
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), sinceRounded(start)) })
}

// BuildDrover builds the drover binary under test to path.
func BuildDrover(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/drover-project/drover/cmd/drover")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build drover: %w\n%s", err, out)
	}
	return nil
}

func sinceRounded(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
