package probes

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/drover-project/drover/inventory"
)

// maxErrorText bounds the node's stderr quoted in an Observed.Error.
const maxErrorText = 512

// Probe learns what node t has, in one script plus, beside it, the
// tcp and http health checks (direct-tcpip over the same connection), so
// a probe costs one round trip of latency. It never returns an error:
// when anything fails or the output is not complete, the result is
// Known=false with a Reason (inventory.Reason's, or probe-error) and the
// error text.
func Probe(ctx context.Context, r inventory.Runner, t inventory.Target, req Request) Observed {
	start := time.Now()
	unknown := func(reason string, err error) Observed {
		return Observed{Node: t.Name, Reason: reason, Error: err.Error(), ProbedAt: start, Duration: time.Since(start)}
	}
	body, err := scriptBody(req)
	if err != nil {
		return unknown(inventory.ReasonProbeError, fmt.Errorf("build probe script: %w", err))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	remote := startRemoteChecks(ctx, r, t, req)

	res, err := run(ctx, r, t, body)
	if err != nil {
		cancel()
		remote.wait()
		return unknown(inventory.Reason(err), fmt.Errorf("run probe: %w", err))
	}
	if res.ExitCode != 0 {
		cancel()
		remote.wait()
		return unknown(inventory.ReasonProbeError, fmt.Errorf("probe script exited %d: %s", res.ExitCode, clip(res.Stderr)))
	}
	obs, err := Parse(res.Stdout)
	if err == nil {
		err = checkAnswered(req, obs)
	}
	if err != nil {
		cancel()
		remote.wait()
		if len(res.Stderr) > 0 {
			err = fmt.Errorf("%w (stderr: %s)", err, clip(res.Stderr))
		}
		return unknown(inventory.ReasonProbeError, err)
	}
	// A check that cannot mean anything (service down, not installed) is
	// not waited for: a fresh node must not cost a health timeout.
	for _, w := range req.Components {
		if ok, _ := healthApplies(w, obs.Components[w.Name]); !ok {
			remote.cancel(w.Name)
		}
	}
	remote.wait()

	for _, w := range req.Components {
		c := obs.Components[w.Name]
		ok, why := healthApplies(w, c)
		if w.Leader != nil && !ok {
			c.Leader = HealthResult{Message: why}
		}
		if w.Health == nil {
			continue
		}
		switch {
		case !ok:
			c.Health = HealthResult{Message: why}
		case !inScript(w.Health):
			c.Health = remote.results[w.Name]
		}
	}
	obs.Node = t.Name
	obs.ProbedAt = start
	obs.Duration = time.Since(start)
	return obs
}

// run runs the probe script, in the node's resident shell when r keeps
// one: a probe only reads, and it is what runs most often.
func run(ctx context.Context, r inventory.Runner, t inventory.Target, body string) (inventory.Result, error) {
	if q, ok := r.(inventory.Querier); ok {
		return q.Query(ctx, t, scriptPrelude, body)
	}
	return r.Run(ctx, t, inventory.OneScript(scriptPrelude, body), nil)
}

// checkAnswered makes sure the output answers the request: every wanted
// component has a block, and an exec check ran exactly where it applies.
// A mismatch means the script and parser disagree; better Unknown than a
// wrong answer.
func checkAnswered(req Request, obs Observed) error {
	for _, w := range req.Components {
		c, ok := obs.Components[w.Name]
		if !ok {
			return fmt.Errorf("probe output has no block for component %s", w.Name)
		}
		applies, _ := healthApplies(w, c)
		wantExec := inScript(w.Health) && applies
		if c.Health.Checked != wantExec {
			return fmt.Errorf("probe output: component %s: exec health line present=%t, expected %t", w.Name, c.Health.Checked, wantExec)
		}
		wantLeader := inScript(w.Leader) && applies
		if c.Leader.Checked != wantLeader {
			return fmt.Errorf("probe output: component %s: leader line present=%t, expected %t", w.Name, c.Leader.Checked, wantLeader)
		}
		if n := len(c.Files) + len(c.MissingFiles); n != len(w.Files) {
			return fmt.Errorf("probe output: component %s: %d file lines for %d files", w.Name, n, len(w.Files))
		}
	}
	return nil
}

// remoteChecks are the tcp and http checks of one probe, in flight.
type remoteChecks struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	results map[string]HealthResult
}

func startRemoteChecks(ctx context.Context, r inventory.Runner, t inventory.Target, req Request) *remoteChecks {
	rc := &remoteChecks{cancels: map[string]context.CancelFunc{}, results: map[string]HealthResult{}}
	for _, w := range req.Components {
		if w.Health == nil {
			continue
		}
		c, err := checkerFor(w.Health) // checkRequest refused an error
		if err != nil || c.inScript {
			continue
		}
		check := c.run
		cctx, cancel := context.WithCancel(ctx)
		rc.cancels[w.Name] = cancel
		rc.wg.Go(func() {
			defer cancel()
			res := check(cctx, r, t, w.Health)
			rc.mu.Lock()
			rc.results[w.Name] = res
			rc.mu.Unlock()
		})
	}
	return rc
}

// cancel stops one component's check, if it has one.
func (rc *remoteChecks) cancel(name string) {
	if c, ok := rc.cancels[name]; ok {
		c()
	}
}

// wait returns once every check is done; results is safe to read after.
func (rc *remoteChecks) wait() { rc.wg.Wait() }

// ProbeAll probes every target, at most parallel at a time (all at once
// when parallel < 1), each with the request for its name, and returns the
// results by node name. A target without a request comes back Unknown
// (probe-error): without an install root there is nothing to look at.
func ProbeAll(ctx context.Context, r inventory.Runner, targets []inventory.Target, reqs map[string]Request, parallel int) map[string]Observed {
	if parallel < 1 || parallel > len(targets) {
		parallel = len(targets)
	}
	out := make(map[string]Observed, len(targets))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(parallel, 1))
	)
	for _, t := range targets {
		started := false
		if ctx.Err() == nil {
			select {
			case sem <- struct{}{}:
				started = true
			case <-ctx.Done():
			}
		}
		if !started {
			// Not started: Unknown like any other probe cut short.
			mu.Lock()
			out[t.Name] = Observed{Node: t.Name, Reason: inventory.Reason(ctx.Err()), Error: "probe not started: " + ctx.Err().Error(), ProbedAt: time.Now()}
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			obs := Probe(ctx, r, t, reqs[t.Name])
			mu.Lock()
			out[t.Name] = obs
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// clip is the node's stderr, trimmed, fit to quote in an error.
func clip(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > maxErrorText {
		b = b[:maxErrorText]
	}
	return string(b)
}
