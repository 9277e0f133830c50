package execute

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/reconciler/plan"
)

// Failures a step can end in, beside transport errors (inventory.Err*)
// and ErrUnhealthy.
var (
	// ErrChecksum: an artifact (local, uploaded or fetched) or a streamed
	// file did not match its sha256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrLocked: another action held the node's lock for the whole wait.
	ErrLocked = errors.New("node locked by another action")
	// ErrNodeMissing: the node lacks a tool, a cached artifact or the
	// package a step needs.
	ErrNodeMissing = errors.New("missing on node")
	// ErrRefused: the step would have written outside drover's paths (a
	// symbolic link out of the version dir on the way), or the install
	// root holds what drover did not write.
	ErrRefused = errors.New("refused on node")
)

// StepError is a step whose script ran and failed.
type StepError struct {
	Step     string
	ExitCode int
	// Stderr is the tail of what the script wrote to stderr.
	Stderr string
}

func (e *StepError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("step %s: exit %d: %s", e.Step, e.ExitCode, msg)
}

// Unwrap maps the scripts' exit codes to sentinels.
func (e *StepError) Unwrap() error {
	switch e.ExitCode {
	case exitChecksum:
		return ErrChecksum
	case exitLocked:
		return ErrLocked
	case exitMissing:
		return ErrNodeMissing
	case exitRefused:
		return ErrRefused
	}
	return nil
}

// step is the one gate every change to a node goes through. In a dry run
// it logs "would: <name>" and runs nothing, so a dry run walks exactly the
// code path of a real one. Otherwise it runs script (which must start with
// lockedPreamble) with stdin, and reports whether the script changed the
// node. The script is labelled with the step name, so a stuck one is
// recognisable in ps on the node. stdin is closed once read, if it is an
// io.Closer. While the job batches steps (stepchain.go), the step waits
// to run with the others and step reports nothing changed: no caller may
// need its result before the batch runs.
func (e *Executor) step(ctx context.Context, j *job, name, script string, stdin io.Reader) (changed bool, err error) {
	if e.DryRun {
		closeInput(stdin)
		j.log.Info("would: "+name, zap.String("step", name))
		return false, nil
	}
	if j.batch != nil {
		if ps, ok := newPendingStep(name, script, stdin); ok {
			j.batch.steps = append(j.batch.steps, ps)
			return false, nil
		}
		// A stream of unknown length cannot share a session's stdin.
		if err := e.runBatch(ctx, j); err != nil {
			closeInput(stdin)
			return false, err
		}
	}
	defer closeInput(stdin)
	return e.runStep(ctx, j, name, script, stdin)
}

// runStep runs one step in a session of its own and records it.
func (e *Executor) runStep(ctx context.Context, j *job, name, script string, stdin io.Reader) (changed bool, err error) {
	if err := e.fenced(name); err != nil {
		j.steps = append(j.steps, plan.StepRecord{Name: name, Result: plan.StepFailed})
		return false, err
	}
	start := time.Now()
	res, err := e.Runner.Run(ctx, j.node.Target, stepLabel(name)+script, stdin)
	return e.record(j, name, res, time.Since(start), err)
}

// stepLabel is the comment line a step's script starts with.
func stepLabel(name string) string { return "# drover step: " + name + "\n" }

// record turns one step's result into its StepRecord and its error.
func (e *Executor) record(j *job, name string, res inventory.Result, took time.Duration, err error) (changed bool, _ error) {
	log := j.log.With(zap.String("step", name), zap.Duration("duration", took))
	if err != nil {
		log.Debug("step failed", zap.Error(err))
		j.steps = append(j.steps, plan.StepRecord{Name: name, Result: plan.StepFailed, Duration: took})
		return false, fmt.Errorf("step %s: %w", name, err)
	}
	if res.ExitCode != 0 {
		serr := &StepError{Step: name, ExitCode: res.ExitCode, Stderr: tail(res.Stderr, 5, 600)}
		log.Debug("step failed", zap.Error(serr))
		j.steps = append(j.steps, plan.StepRecord{Name: name, Result: plan.StepFailed, Duration: took})
		return false, serr
	}
	changed = hasLine(res.Stdout, changedMark)
	rec := plan.StepRecord{Name: name, Result: plan.StepInPlace, Duration: took}
	if strings.HasPrefix(name, "hook ") {
		rec.Output = tail(res.Stderr, 10, 1000) // a hook prints to stderr: its output for the status
	}
	if changed {
		rec.Result = plan.StepChanged
	}
	j.steps = append(j.steps, rec)
	if changed {
		log.Info("step changed node")
	} else {
		log.Debug("step found node in place")
	}
	return changed, nil
}

// query runs a read-only script and returns its stdout. It takes no lock
// (it only reads what the steps replace atomically) and runs nothing in a
// dry run, returning "" as if the node had nothing yet.
func (e *Executor) query(ctx context.Context, j *job, name, script string) (string, error) {
	if e.DryRun {
		return "", nil
	}
	res, err := e.Runner.Run(ctx, j.node.Target, "# drover query: "+name+"\n"+script, nil)
	if err != nil {
		return "", fmt.Errorf("query %s: %w", name, err)
	}
	if res.ExitCode != 0 {
		return "", &StepError{Step: name, ExitCode: res.ExitCode, Stderr: tail(res.Stderr, 5, 600)}
	}
	return string(res.Stdout), nil
}

// would logs a step that is not a script (waiting for health) in a dry run
// and reports whether the caller should skip it.
func (e *Executor) would(j *job, name string) bool {
	if e.DryRun {
		j.log.Info("would: "+name, zap.String("step", name))
	}
	return e.DryRun
}

// hasLine reports whether out has a line that is exactly s.
func hasLine(out []byte, s string) bool {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == s {
			return true
		}
	}
	return false
}

// tail keeps the last lines of a script's stderr, at most max bytes, on
// one line, for an error message.
func tail(b []byte, lines, max int) string {
	s := strings.TrimSpace(string(b))
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	s = strings.Join(parts, "; ")
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}
