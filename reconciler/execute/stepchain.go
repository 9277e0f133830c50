package execute

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/drover-project/drover/reconciler/internal/chain"
	"github.com/drover-project/drover/reconciler/plan"
)

// Steps that follow one another with nothing to decide between them run
// in one SSH session: a session costs the node a login shell, timeout
// and sh (on a small VM ~40 ms of CPU), more than most steps' own work.
// Each step runs as it would alone, in a subshell of the session's shell
// with its own stdin cut from the session's (head -c, or by the step
// itself: exactInput), and reports its exit status and its start and end
// (the node's /proc/uptime, read with a builtin) after a random marker on
// stdout and stderr. The first step
// that fails ends the session; the steps after it do not run. Each step
// keeps its name, record, lock and error as if it had run alone.

// pendingStep is a step waiting in a batch.
type pendingStep struct {
	name, script string
	stdin        io.Reader // exactly size bytes; nil when size is 0
	size         int64
	exact        bool // the script reads exactly size bytes itself
}

// exactInput is a step's input that its script reads to the byte (head
// -c): a batch passes it on uncut, sparing the node a copy through a pipe
// (an artifact is tens of MB).
type exactInput struct {
	io.Reader
	f *os.File
	n int64
}

// newExactInput is the first n bytes of f, which the step will close.
func newExactInput(f *os.File, n int64) *exactInput {
	return &exactInput{Reader: io.LimitReader(f, n), f: f, n: n}
}

func (x *exactInput) Close() error { return x.f.Close() }

// stepBatch holds the steps of a job waiting to run together.
type stepBatch struct{ steps []pendingStep }

// newPendingStep wraps a step for a batch. It fails for an input whose
// length is not known beforehand: the session's stdin is the steps'
// inputs back to back, each step reading its own length.
func newPendingStep(name, script string, stdin io.Reader) (pendingStep, bool) {
	ps := pendingStep{name: name, script: script}
	switch r := stdin.(type) {
	case nil:
	case *bytes.Reader:
		ps.size = int64(r.Len())
		if ps.size > 0 {
			ps.stdin = r
		}
	case *exactInput:
		ps.stdin, ps.size, ps.exact = r, r.n, true
	default:
		return ps, false
	}
	return ps, true
}

// closeInput closes a step's input if it is a file.
func closeInput(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}

// closeInputs closes the inputs of steps once they ran or never will.
func closeInputs(steps []pendingStep) {
	for _, s := range steps {
		closeInput(s.stdin)
	}
}

// startBatch makes the job's steps wait (see step) until runBatch or
// endBatch runs them.
func (j *job) startBatch() {
	if j.batch == nil {
		j.batch = &stepBatch{}
	}
}

// dropBatch forgets waiting steps, which never ran because the action
// failed before its batch did, and stops batching.
func (j *job) dropBatch() {
	if j.batch != nil {
		closeInputs(j.batch.steps)
	}
	j.batch = nil
}

// endBatch runs the waiting steps and stops batching.
func (e *Executor) endBatch(ctx context.Context, j *job) error {
	err := e.runBatch(ctx, j)
	j.batch = nil
	return err
}

// runBatch runs the waiting steps: one alone as step does, several in
// one session.
func (e *Executor) runBatch(ctx context.Context, j *job) error {
	if j.batch == nil || len(j.batch.steps) == 0 {
		return nil
	}
	steps := j.batch.steps
	j.batch.steps = nil
	defer closeInputs(steps)
	if err := e.fenced(stepNames(steps)); err != nil {
		j.steps = append(j.steps, plan.StepRecord{Name: steps[0].name, Result: plan.StepFailed})
		return err
	}
	if len(steps) == 1 {
		_, err := e.runStep(ctx, j, steps[0].name, steps[0].script, steps[0].stdin)
		return err
	}
	var raw [16]byte
	rand.Read(raw[:])
	marker := hex.EncodeToString(raw[:])
	var ins []io.Reader
	for _, s := range steps {
		if s.stdin != nil {
			ins = append(ins, s.stdin)
		}
	}
	var stdin io.Reader
	if len(ins) > 0 {
		stdin = io.MultiReader(ins...)
	}
	start := time.Now()
	res, runErr := e.Runner.Run(ctx, j.node.Target, chainScript(marker, steps), stdin)
	took := time.Since(start)
	reports, rest := chain.Split(res, marker)
	for i, s := range steps {
		if i < len(reports) {
			if _, err := e.record(j, s.name, reports[i].Res, reports[i].Took, nil); err != nil {
				return err
			}
			took -= reports[i].Took
			continue
		}
		// The session ended under this step, or before it: what the
		// shell said last is this step's.
		if runErr == nil && rest.ExitCode == 0 {
			runErr = errors.New("the node's shell ended without the step's report")
		}
		_, err := e.record(j, s.name, rest, max(took, 0), runErr)
		return err
	}
	if runErr != nil {
		return fmt.Errorf("steps %s: %w", stepNames(steps), runErr)
	}
	return nil
}

func stepNames(steps []pendingStep) string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// chainScript runs steps one after another in one shell (see above).
// The lines "# <marker> step <size>" and "# <marker> done" enclose each
// step's own script.
func chainScript(marker string, steps []pendingStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# drover steps: %s\ndc_m=%s\n", stepNames(steps), marker)
	b.WriteString("dc_up() { dc_t=; read -r dc_t dc_x 2> /dev/null < /proc/uptime || dc_t=; }\ndc_up\ndc_t0=$dc_t\n")
	for i, s := range steps {
		fmt.Fprintf(&b, "# %s step %d\n", marker, s.size)
		if s.size > 0 && !s.exact {
			fmt.Fprintf(&b, "head -c %d | (\n", s.size)
		} else {
			b.WriteString("(\n")
		}
		b.WriteString(stepLabel(s.name))
		b.WriteString(s.script)
		fmt.Fprintf(&b, "\n# %s done\n", marker)
		if s.size > 0 {
			b.WriteString(")\n")
		} else {
			b.WriteString(") < /dev/null\n")
		}
		fmt.Fprintf(&b, `dc_s=$?
dc_up
printf '\n%%s %%s %%s %%s\n' "$dc_m" "$dc_s" "$dc_t0" "$dc_t"
printf '\n%%s %d\n' "$dc_m" >&2
[ "$dc_s" -eq 0 ] || exit "$dc_s"
dc_t0=$dc_t
`, i)
	}
	return b.String()
}
