package execute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// ErrUnhealthy is wrapped by an action whose component did not become
// healthy (or whose unit would not start) in time: the rollout's health
// gate failed, and onFailure decides what happens next.
var ErrUnhealthy = errors.New("not healthy")

// ProbeFunc probes a node; probes.Probe in production.
type ProbeFunc func(ctx context.Context, r inventory.Runner, t inventory.Target, req probes.Request) probes.Observed

// Defaults for the Executor's zero fields.
const (
	DefaultHealthPoll = 2 * time.Second
	DefaultLockWait   = 30 * time.Second
)

// Config is what an executor needs to act: how to reach nodes, where
// drover's tree is on them, and how long to wait.
type Config struct {
	Runner      inventory.Runner
	InstallRoot string
	// Generation is the manifest generation written into receipts.
	Generation string
	Log        *zap.Logger
	// DryRun logs each step as "would: <step>" and touches no node.
	DryRun bool
	// HealthPoll is how often a waiting action re-probes (default 2s).
	HealthPoll time.Duration
	// HealthTimeout bounds each wait for health (the rollout's
	// healthTimeout); zero leaves only the context's deadline.
	HealthTimeout time.Duration
	// LockWait is how long a step waits for the node lock (default 30s).
	LockWait time.Duration
	// UnitDir is where unit files go (default probes.DefaultUnitDir).
	UnitDir string
	// Probe re-probes a node while waiting for health (default probes.Probe).
	Probe ProbeFunc
	Now   func() time.Time
	// Fence, if set, is asked before every step (fence.go).
	Fence Fence
	// Desired renders what a join or leave of a quorum group needs
	// (Desired.ForMembership); such an action fails without it.
	Desired *plan.Desired
}

// Executor runs actions on nodes. Each action is a fixed sequence of
// small steps (steps.go), each one script run through the gate
// (steprun.go) and each idempotent, so an action cut off anywhere and run
// again, or run twice, ends in the same state. An Executor is safe for
// concurrent use on different nodes; its Config must not change while
// actions run. New makes one: the controller keeps its Config by value
// and derives each manifest's executor from it, so a field added to
// Config reaches every executor with no copy list to keep in step.
type Executor struct {
	Config

	hashMu sync.Mutex
	hashes map[fileStamp]string
}

// New is an executor acting with c.
func New(c Config) *Executor { return &Executor{Config: c} }

// actionFunc runs one kind of action; there is one per action_*.go file.
type actionFunc func(ctx context.Context, e *Executor, j *job) error

// actionTable is every action kind and the function that runs it.
func actionTable() map[plan.ActionKind]actionFunc {
	return map[plan.ActionKind]actionFunc{
		plan.ActionInstall:     runInstall,
		plan.ActionUpgrade:     runUpgrade,
		plan.ActionReconfigure: runReconfigure,
		plan.ActionRestart:     runRestart,
		plan.ActionRemove:      runRemove,
		plan.ActionRollback:    runRollback,
	}
}

// job is one action on one node with everything its steps need.
type job struct {
	node   *plan.DesiredNode
	action plan.Action
	// name is the component; want is nil for remove (and may be for rollback).
	name string
	want *plan.DesiredComponent
	have *probes.Component
	log  *zap.Logger
	// steps are the steps that ran, in order, for the action's record.
	steps []plan.StepRecord
	// batch, when set, holds steps back to run in one session
	// (stepchain.go).
	batch *stepBatch
	// member is what a join or leave runs beside its steps; nil for
	// any other action.
	member *plan.MembershipWork
	// stopped: the action stopped the unit already (a leave), so no
	// later stop runs preStop again.
	stopped bool
	// drained: preStop ran already, ahead of the restart (drain).
	drained bool
}

// Do runs action a on node n. want is the component as the manifest wants
// it on n (nil for remove), have what the last probe saw (nil if
// nothing). For rollback, a.To is the version to go back to (empty:
// derived from the receipt). A failed health gate wraps ErrUnhealthy.
func (e *Executor) Do(ctx context.Context, n *plan.DesiredNode, a plan.Action, want *plan.DesiredComponent, have *probes.Component) error {
	_, err := e.DoSteps(ctx, n, a, want, have)
	return err
}

// DoSteps is Do that also returns the steps that ran (up to the failed
// one), which the controller keeps as the action's output.
func (e *Executor) DoSteps(ctx context.Context, n *plan.DesiredNode, a plan.Action, want *plan.DesiredComponent, have *probes.Component) ([]plan.StepRecord, error) {
	run, ok := actionTable()[a.Kind]
	if !ok {
		return nil, &ActionError{Kind: a.Kind, Component: a.Component, Node: n.Name, Err: errors.New("unknown action")}
	}
	j := &job{node: n, action: a, name: a.Component, want: want, have: have}
	if a.Membership != "" {
		mw, err := e.membershipWork(a)
		if err != nil {
			return nil, &ActionError{Kind: a.Kind, Component: a.Component, Node: n.Name, Err: err}
		}
		j.member = mw
		if mw.Want != nil {
			j.want = mw.Want
		}
	}
	if err := e.check(j); err != nil {
		return nil, &ActionError{Kind: a.Kind, Component: a.Component, Node: n.Name, Err: err}
	}
	j.log = e.logger().With(zap.String("node", n.Name), zap.String("component", a.Component), zap.String("action", string(a.Kind)))
	// One of several daemons leaves a record of the action on the node
	// while it runs, for a successor to count (takeover.go).
	if e.Fence != nil && !e.DryRun {
		if err := e.markInflight(ctx, j); err != nil {
			return j.steps, &ActionError{Kind: a.Kind, Component: a.Component, Node: n.Name, Err: err}
		}
	}
	err := run(ctx, e, j)
	if e.Fence != nil && !e.DryRun && !errors.Is(err, ErrFenced) {
		if cerr := e.clearInflight(ctx, j); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return j.steps, &ActionError{Kind: a.Kind, Component: a.Component, Node: n.Name, Err: err}
	}
	return j.steps, nil
}

// ActionError is a failed action: "upgrade zk on m1: <Err>". Whoever
// composes a longer message (a halt reason) takes Err, so the prefix is
// never said twice.
type ActionError struct {
	Kind      plan.ActionKind
	Component string
	Node      string
	Err       error
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("%s %s on %s: %v", e.Kind, e.Component, e.Node, e.Err)
}

func (e *ActionError) Unwrap() error { return e.Err }

// ActionCause is what went wrong in a failed action, without the
// action's own "upgrade zk on m1: " prefix.
func ActionCause(err error) error {
	if ae, ok := errors.AsType[*ActionError](err); ok {
		return ae.Err
	}
	return err
}

// sha256RE is an artifact digest. Names and versions become path
// elements on the node; the manifest's rules (manifests.IsName,
// IsVersion) are checked again before a script is built.
var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// check refuses a job whose values could not safely name things on a node.
func (e *Executor) check(j *job) error {
	if !path.IsAbs(e.InstallRoot) || path.Clean(e.InstallRoot) != e.InstallRoot || e.InstallRoot == "/" {
		return fmt.Errorf("install root %q must be an absolute, clean path other than /", e.InstallRoot)
	}
	if !manifests.IsName(j.name) {
		return fmt.Errorf("component name %q is not %s", j.name, manifests.NamePattern)
	}
	switch j.action.Kind {
	case plan.ActionInstall, plan.ActionUpgrade, plan.ActionReconfigure:
		if j.want == nil {
			return errors.New("no desired component given")
		}
	}
	w := j.want
	if w == nil {
		return nil
	}
	if w.Name != j.name {
		return fmt.Errorf("desired component is %q, not %q", w.Name, j.name)
	}
	if !manifests.IsVersion(w.Version) {
		return fmt.Errorf("version %q is not %s", w.Version, manifests.VersionPattern)
	}
	if w.ArtifactPath != "" && w.ArtifactURL != "" {
		return errors.New("artifact has both a path and a url")
	}
	if (w.ArtifactPath != "" || w.ArtifactURL != "") && !sha256RE.MatchString(strings.ToLower(w.ArtifactSHA256)) {
		return fmt.Errorf("artifact sha256 %q is not 64 hex digits", w.ArtifactSHA256)
	}
	for _, f := range w.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || strings.ContainsRune(f.Path, 0) {
			return fmt.Errorf("file %q must be an absolute, clean path", f.Path)
		}
	}
	return nil
}

func (e *Executor) logger() *zap.Logger {
	if e.Log == nil {
		return zap.NewNop()
	}
	return e.Log
}

func (e *Executor) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e *Executor) lockWait() time.Duration {
	if e.LockWait <= 0 {
		return DefaultLockWait
	}
	return e.LockWait
}

func (e *Executor) unitDir() string {
	if e.UnitDir == "" {
		return probes.DefaultUnitDir
	}
	return e.UnitDir
}

func (e *Executor) probe() ProbeFunc {
	if e.Probe == nil {
		return probes.Probe
	}
	return e.Probe
}

// fileStamp identifies a local file's content cheaply: a changed file
// almost always changes size or mtime.
type fileStamp struct {
	path  string
	size  int64
	mtime int64
}

// localSHA256 hashes a local artifact, once per (path, size, mtime), so
// a rollout to many nodes hashes a large artifact once.
func (e *Executor) localSHA256(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	key := fileStamp{path: p, size: st.Size(), mtime: st.ModTime().UnixNano()}
	e.hashMu.Lock()
	defer e.hashMu.Unlock()
	if h, ok := e.hashes[key]; ok {
		return h, nil
	}
	f, err := manifests.OpenRegular(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if e.hashes == nil {
		e.hashes = map[fileStamp]string{}
	}
	e.hashes[key] = sum
	return sum, nil
}

// verifyLocalArtifact fails fast, before any node is touched, when the
// manifest's artifact file does not match its sha256.
func (e *Executor) verifyLocalArtifact(w *plan.DesiredComponent) error {
	if w.ArtifactPath == "" {
		return nil
	}
	got, err := e.localSHA256(w.ArtifactPath)
	if err != nil {
		return fmt.Errorf("artifact %s: %w", w.ArtifactPath, err)
	}
	if want := strings.ToLower(w.ArtifactSHA256); got != want {
		return fmt.Errorf("artifact %s: %w: expected %s, got %s", w.ArtifactPath, ErrChecksum, want, got)
	}
	return nil
}

// waitHealthy re-probes the node until the component's unit is active and
// its health check passes (or it has none), up to HealthTimeout and the
// context's deadline. Running out of time, or a unit systemd gave up on,
// wraps ErrUnhealthy with the last thing the probe said; a cancelled
// context is returned as is.
func (e *Executor) waitHealthy(ctx context.Context, j *job, service bool, check bool) error {
	if !service && !check {
		return nil
	}
	if e.would(j, "wait for health") {
		return nil
	}
	start := time.Now()
	hctx := ctx
	if e.HealthTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, e.HealthTimeout)
		defer cancel()
	}
	poll := e.HealthPoll
	if poll <= 0 {
		poll = DefaultHealthPoll
	}
	want := probes.Want{Name: j.name, Service: service}
	if j.want != nil {
		want.Version, want.Health = j.want.Version, j.want.Health
	}
	req := probes.Request{InstallRoot: e.InstallRoot, UnitDir: e.UnitDir, Components: []probes.Want{want}}
	timer := time.NewTimer(0)
	defer timer.Stop()
	last := "not probed yet"
	for {
		select {
		case <-hctx.Done():
			if err := ctx.Err(); errors.Is(err, context.Canceled) {
				return fmt.Errorf("wait for health: %w", err)
			}
			return fmt.Errorf("wait for health: %w after %s: %s", ErrUnhealthy, time.Since(start).Round(time.Millisecond), last)
		case <-timer.C:
		}
		obs := e.probe()(hctx, e.Runner, j.node.Target, req)
		ok, msg := healthIn(obs, j.name, service)
		if ok {
			j.log.Info("healthy", zap.Duration("waited", time.Since(start)))
			return nil
		}
		if service && unitGaveUp(obs, j.name) {
			// systemd will not start it again by itself (start limit hit,
			// or no Restart=): waiting out the timeout changes nothing.
			return fmt.Errorf("wait for health: %w: %s", ErrUnhealthy, msg)
		}
		if service && obs.Known {
			// Restart=on-failure keeps a unit that exits at once
			// activating (auto-restart), never failed: count its exits
			// rather than wait out healthTimeout for it. Asked on every
			// poll that is not healthy, not only when the probe saw the
			// unit down: RestartSec and the poll are both 2s, so a probe
			// can catch it just restarted each time.
			if loop := e.crashLoop(hctx, j, time.Since(start)); loop != "" {
				return fmt.Errorf("wait for health: %w: unit %s %s", ErrUnhealthy, plan.UnitName(j.name), loop)
			}
		}
		if hctx.Err() == nil || last == "not probed yet" {
			last = msg // a probe cut off by the deadline says less than the one before
		}
		timer.Reset(poll)
	}
}

// unitGaveUp reports whether the probe saw the unit failed: after our
// restart, systemd shows a unit it is still retrying as activating
// (auto-restart), so failed means it stopped trying.
func unitGaveUp(o probes.Observed, name string) bool {
	c := o.Components[name]
	return o.Known && c != nil && c.Unit.ActiveState == "failed"
}

// crashLoopExits is how many exits since the restart make a crash loop:
// with RestartSec=2s, three take about four seconds.
const crashLoopExits = 3

// crashLoop asks systemd how often the unit exited since the action
// started it, and describes the loop ("exited 3 times in 5s: status=1")
// once it has exited crashLoopExits times; "" otherwise, or when systemd
// cannot tell (the health wait goes on as before). It costs one command
// per poll, and only while the health gate waits.
func (e *Executor) crashLoop(ctx context.Context, j *job, since time.Duration) string {
	out, err := e.query(ctx, j, "unit restarts", "systemctl show -p NRestarts -p ExecMainCode -p ExecMainStatus -p ActiveState -p SubState "+inventory.Quote(plan.UnitName(j.name)))
	if err != nil {
		j.log.Debug("unit restarts unknown", zap.Error(err))
		return ""
	}
	return parseCrashLoop(out, since)
}

// parseCrashLoop reads `systemctl show` of NRestarts, ExecMainCode,
// ExecMainStatus, ActiveState and SubState. NRestarts counts the
// restarts Restart= made since the unit was last started by hand (the
// action's restart), each after an exit; a unit waiting to be restarted
// (auto-restart) or given up on (failed) has exited once more. It is pure.
func parseCrashLoop(show string, since time.Duration) string {
	kv := map[string]string{}
	for _, l := range strings.Split(show, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = v
		}
	}
	restarts, err := strconv.Atoi(kv["NRestarts"])
	if err != nil {
		return ""
	}
	exits := restarts
	if kv["SubState"] == "auto-restart" || kv["ActiveState"] == "failed" {
		exits++
	}
	if exits < crashLoopExits {
		return ""
	}
	how := "status=" + kv["ExecMainStatus"]
	switch kv["ExecMainCode"] {
	case "2", "3": // CLD_KILLED, CLD_DUMPED: the status is the signal
		how = "signal=" + kv["ExecMainStatus"]
	}
	return fmt.Sprintf("exited %d times in %s: %s", exits, since.Round(time.Second), how)
}

// healthIn reads one probe: healthy means the unit (if any) is active and
// the health check passed or there is none.
func healthIn(o probes.Observed, name string, service bool) (bool, string) {
	if !o.Known {
		return false, strings.TrimSpace("probe failed: " + o.Reason + " " + o.Error)
	}
	c := o.Components[name]
	if c == nil {
		return false, "probe did not report the component"
	}
	if service && c.Unit.ActiveState != "active" {
		state := c.Unit.ActiveState
		if c.Unit.SubState != "" {
			state += "/" + c.Unit.SubState
		}
		if state == "" {
			state = "unknown"
		}
		return false, "unit " + plan.UnitName(name) + " is " + state
	}
	if c.Health.Checked && !c.Health.OK {
		return false, "health check failed: " + c.Health.Message
	}
	return true, c.Health.Message
}

// previousVersion is the version a new receipt for version v records as
// Previous: what the node had before, or, when re-applying the same
// version, what that one replaced.
func previousVersion(have *probes.Component, v string) string {
	if have == nil {
		return ""
	}
	if r := have.Receipt; r != nil {
		if r.Version != v {
			return r.Version
		}
		return r.Previous
	}
	if have.Active != v {
		return have.Active
	}
	return ""
}

// receiptFor is the receipt an install, upgrade or reconfigure writes.
func (e *Executor) receiptFor(j *job) probes.Receipt {
	w := j.want
	r := probes.Receipt{
		Component:      w.Name,
		Version:        w.Version,
		ArtifactSHA256: strings.ToLower(w.ArtifactSHA256),
		ArtifactStrip:  w.ArtifactStrip,
		ConfigHash:     w.ConfigHash,
		UnitHash:       w.UnitHash,
		Generation:     e.Generation,
		Time:           e.now().UTC(),
		Previous:       previousVersion(j.have, w.Version),
	}
	if r.UnitHash == "" && w.Unit != nil {
		r.UnitHash = manifests.SHA256Hex(w.Unit)
	}
	for _, f := range w.Files {
		r.Files = append(r.Files, f.Path)
	}
	r.Hooks = plan.KeptHooks(w)
	return r
}

// haveReceipt is the receipt the probe saw, or nil.
func (j *job) haveReceipt() *probes.Receipt {
	if j.have == nil {
		return nil
	}
	return j.have.Receipt
}

// haveUnitFile reports whether the probe saw the component's unit file.
func (j *job) haveUnitFile() bool {
	return j.have != nil && j.have.Unit.Exists
}

func (e *Executor) membershipWork(a plan.Action) (*plan.MembershipWork, error) {
	if e.Desired == nil {
		return nil, errors.New("membership change: the executor has no desired state to render it from")
	}
	return e.Desired.ForMembership(a)
}

// membershipHook runs the join's or leave's hook (preJoin, postLeave) on
// the member that stays, as a step of the action: its steps are the
// action's, marked with the node they ran on.
func (e *Executor) membershipHook(ctx context.Context, j *job) error {
	mw := j.member
	if mw == nil || mw.Hook == nil {
		return nil
	}
	if err := e.runBatch(ctx, j); err != nil {
		return err
	}
	via := &job{node: mw.Via, action: j.action, name: j.name, log: j.log.With(zap.String("via", mw.Via.Name))}
	err := e.runHook(ctx, via, mw.HookName, mw.Hook)
	for _, s := range via.steps {
		s.Node = mw.Via.Name
		j.steps = append(j.steps, s)
	}
	if err != nil {
		return fmt.Errorf("%w: on %s: %w", ErrUnhealthy, mw.Via.Name, err)
	}
	return nil
}
