package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// result is one finished drover invocation.
type result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
	Took   time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("drover %s: exit %d in %v\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Took.Round(10*time.Millisecond), r.Stdout, r.Stderr)
}

// droverCmd is the drover binary run hermetically: no agent, no user ssh
// config, the manifest's dir as working dir, killed if the test binary dies.
func (s *suite) droverCmd(ctx context.Context, manifest string, args ...string) *exec.Cmd {
	args = append(args, "-f", manifest)
	cmd := exec.CommandContext(ctx, s.drover, args...)
	cmd.Dir = filepath.Dir(manifest)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(manifest), "LANG=C"}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs `drover ARGS -f manifest` to the end and logs what it said.
func (s *suite) run(t *testing.T, manifest string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := s.droverCmd(ctx, manifest, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("drover %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("drover %s: timed out\n%s", strings.Join(args, " "), r)
	}
	t.Logf("%s", r)
	return r
}

// mustApply applies the manifest and fails the test unless it converged.
func (s *suite) mustApply(t *testing.T, manifest string) result {
	t.Helper()
	r := s.run(t, manifest, "apply", "--yes")
	if r.Code != 0 {
		t.Fatalf("apply exited %d, want 0", r.Code)
	}
	return r
}

// mustPlanEmpty runs plan and fails unless it reports no changes.
func (s *suite) mustPlanEmpty(t *testing.T, manifest string) result {
	t.Helper()
	r := s.run(t, manifest, "plan")
	if r.Code != 0 || !strings.Contains(r.Stdout, noChanges) {
		t.Fatalf("plan exited %d (want 0) and said %q, want %q", r.Code, lastLine(r.Stdout), noChanges)
	}
	return r
}

// noChanges is the summary of an empty plan.
const noChanges = "No changes. The cluster matches the manifest."

// actionLine is one progress line of apply about an action:
// "NODE  KIND COMPONENT [FROM -> ]TO ..." when it starts, "...: done in D"
// when it ends, "NODE KIND COMPONENT failed: ..." when it fails.
type actionLine struct {
	Node, Kind, Component string
	Event                 string // start, done, failed
}

var (
	actionStartRE  = regexp.MustCompile(`^(\S+)\s+(install|upgrade|reconfigure|restart|remove|rollback) (\S+).* \.\.\.$`)
	actionDoneRE   = regexp.MustCompile(`^(\S+)\s+(install|upgrade|reconfigure|restart|remove|rollback) (\S+).*: done in \S+$`)
	actionFailedRE = regexp.MustCompile(`^(\S+)\s+(install|upgrade|reconfigure|restart|remove|rollback) (\S+) failed: `)
)

func parseActionLine(line string) (actionLine, bool) {
	for _, p := range []struct {
		re    *regexp.Regexp
		event string
	}{{actionStartRE, "start"}, {actionDoneRE, "done"}, {actionFailedRE, "failed"}} {
		if m := p.re.FindStringSubmatch(line); m != nil {
			return actionLine{Node: m[1], Kind: m[2], Component: m[3], Event: p.event}, true
		}
	}
	return actionLine{}, false
}

// actions are the action lines of apply's output, in order.
func actions(out string) []actionLine {
	var as []actionLine
	for _, l := range strings.Split(out, "\n") {
		if a, ok := parseActionLine(strings.TrimRight(l, "\r")); ok {
			as = append(as, a)
		}
	}
	return as
}

// maxOverlap is the largest number of actions of a component that were
// running at once, by apply's start and end lines, and the nodes each
// action ran on.
func maxOverlap(out, component string) (int, []string) {
	running := map[string]bool{}
	most := 0
	var nodes []string
	for _, a := range actions(out) {
		if a.Component != component {
			continue
		}
		switch a.Event {
		case "start":
			running[a.Node] = true
			nodes = append(nodes, a.Node)
		default:
			delete(running, a.Node)
		}
		most = max(most, len(running))
	}
	return most, nodes
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lineWatcher copies a running drover's stdout into a buffer and tells a
// waiter when a line matching a predicate has appeared.
type lineWatcher struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines []string
	cond  *sync.Cond
	done  bool
}

func newLineWatcher(r io.Reader) *lineWatcher {
	w := &lineWatcher{}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.buf.WriteString(sc.Text() + "\n")
			w.lines = append(w.lines, sc.Text())
			w.cond.Broadcast()
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.done = true
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	return w
}

// waitFor blocks until a line satisfies match (true) or the output ends
// (false).
func (w *lineWatcher) waitFor(match func(string) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := 0
	for {
		for ; seen < len(w.lines); seen++ {
			if match(w.lines[seen]) {
				return true
			}
		}
		if w.done {
			return false
		}
		w.cond.Wait()
	}
}

// wait blocks until the output ends and returns all of it.
func (w *lineWatcher) wait() string {
	w.waitFor(func(string) bool { return false })
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
