package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/console/wizard"
	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

func newDaemonCommand() *cobra.Command {
	var file, listen, lockDir, tokenFile, artifactsDir, knownHosts string
	var grace time.Duration
	var workers, cpus int
	var pprof, perNodeMetrics bool
	var allowedHosts []string
	var svc serviceOptions
	var haOpts haOptions
	cmd := &cobra.Command{
		Use:   "daemon [-f FILE]",
		Short: "Watch the manifest and keep the cluster converged",
		Long: `daemon watches the manifest and keeps every node in the state it describes:
it probes each node every probeInterval, repairs drift, and rolls out any
edit of the manifest with no command run. An invalid edit is rejected as a
whole and the last good manifest stays in force; a deleted or emptied
manifest never means "remove everything".

It serves the web console (/), /metrics, /healthz, /readyz, /api/v1/status,
/api/v1/plan and /api/v1/events on --addr. Reads need no token; anything
that changes something needs the console token, read from --token-file or
generated at start and printed once, as part of the console's URL. SIGHUP re-reads the manifest; SIGTERM or Ctrl-C stops taking new
work and lets in-flight actions finish for up to --grace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := svc.logger()
			if err != nil {
				return err
			}
			defer log.Sync()
			setCPUs(cmd, cpus)
			d := &daemon{svc: svc, file: file, listen: listen, grace: grace, workers: workers, lockDir: lockDir, tokenFile: tokenFile,
				artifactsDir: artifactsDir, knownHosts: knownHosts, pprof: pprof, perNodeMetrics: perNodeMetrics, allowedHosts: allowedHosts, log: log, stderr: cmd.ErrOrStderr(), ha: haOpts}
			return d.run(cmd.Context())
		},
	}
	addDaemonManifestFlag(cmd, &file)
	addServiceFlags(cmd, &svc, &lockDir)
	addHAFlags(cmd, &haOpts)
	// --listen was the daemon's own name for what every client calls --addr.
	cmd.Flags().StringVar(&listen, "listen", defaultAddr, "address of the metrics and status HTTP server")
	_ = cmd.Flags().MarkDeprecated("listen", "use --addr")
	addAddrFlag(cmd, &listen, "address of the console, metrics and status HTTP server")
	cmd.Flags().DurationVar(&grace, "grace", time.Minute, "on stop, how long in-flight actions may take to finish")
	cmd.Flags().BoolVar(&perNodeMetrics, "per-node-metrics", true, "export the series with a node label (drover_node_*, drover_component_info); false for a large fleet keeps only the aggregates")
	cmd.Flags().IntVar(&workers, "workers", 0, "nodes reconciled at once (default: ssh.concurrency)")
	cmd.Flags().IntVar(&cpus, "cpus", 1, "CPUs the daemon's Go code may use at once (GOMAXPROCS; 0: Go's default)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the console token (mode 0600); default: a new token each start, printed to stderr")
	cmd.Flags().StringVar(&artifactsDir, "artifacts-dir", "", "folder the setup wizard offers artifacts from (<name>-<version>.tar.gz)")
	cmd.Flags().BoolVar(&pprof, "pprof", false, "also serve Go's profiles on --addr under /debug/pprof/ (no token: anyone who reaches --addr can take them)")
	cmd.Flags().StringSliceVar(&allowedHosts, "allowed-host", nil, "a host name the console and API may be reached by, besides localhost and IP addresses (repeatable; requests naming any other host are refused, against DNS rebinding)")
	cmd.Flags().StringVar(&knownHosts, "known-hosts", "", "known_hosts file the setup wizard records accepted host keys in (default: the manifest's ssh.knownHostsFile)")
	return cmd
}

type daemon struct {
	svc                   serviceOptions
	file, listen, lockDir string
	tokenFile             string
	artifactsDir          string
	knownHosts            string
	allowedHosts          []string
	grace                 time.Duration
	workers               int
	pprof                 bool
	perNodeMetrics        bool
	log                   *zap.Logger
	stderr                io.Writer
	ha                    haOptions // several daemons on etcd (daemon_ha.go)
	hs                    *haState  // set while one of several leads

	runner  *swapRunner
	ctrl    *reconciler.Controller
	metrics *metrics.Metrics
	sshCfg  manifests.SSH
	// loadMu serialises manifest loads (watcher and SIGHUP).
	loadMu sync.Mutex
	loaded bool // a manifest has been in force (under loadMu)
}

func (d *daemon) run(ctx context.Context) error {
	// Signals first, so that one arriving during start-up stops cleanly.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	abs, err := filepath.Abs(d.file)
	if err != nil {
		return err
	}
	unlock, err := lockManifest(d.lockDir, abs)
	if err != nil {
		return err
	}
	defer unlock()
	// With etcd, the daemon stands by until it leads (daemon_ha.go).
	var store namedStore
	var hs *haState
	if d.ha.enabled() {
		var lctx context.Context
		if hs, store, lctx, err = d.haStart(ctx, abs); err != nil || store == nil {
			return err
		}
		defer hs.close()
		ctx = lctx
		d.hs = hs
	} else if store, err = openStateStore(d.svc.stateDir, abs); err != nil {
		return err
	}
	defer store.Close()

	// The first manifest must be good: there is no last good one yet. A
	// missing one is a new cluster: the daemon serves the console and the
	// setup wizard, and takes the manifest up once it is written.
	l, desired, took, err := loadFirst(ctx, abs)
	missing := errors.Is(err, fs.ErrNotExist)
	if ctx.Err() != nil {
		return nil // stopped while loading
	}
	if err != nil && !missing {
		return err
	}
	if missing {
		if _, derr := os.Stat(filepath.Dir(abs)); derr != nil {
			return fmt.Errorf("manifest folder: %w", derr)
		}
		d.log.Warn("no manifest yet: waiting for it to be written (by hand or by the setup wizard at /setup)", zap.String("manifest", abs))
	}
	d.runner = &swapRunner{}
	defer d.runner.close()
	if l != nil {
		pool, err := newPool(l.Cluster, d.log.Named("ssh"))
		if err != nil {
			return err
		}
		d.runner.set(pool)
		d.sshCfg = l.Cluster.Spec.SSH
	}

	reg := metrics.NewRegistry()
	if hs != nil {
		reg.MustRegister(metrics.NewHACollector(hs.snapshot))
	}
	workers := d.workers
	if workers <= 0 && l != nil {
		workers = l.Cluster.Spec.SSH.Concurrency
	}
	if workers <= 0 {
		workers = manifests.DefaultConcurrency
	}
	// The controller gives each manifest its own copy with its install
	// root, generation and health timeout.
	exec := &execute.Config{Runner: d.runner, Log: d.log.Named("executor")}
	d.ctrl = reconciler.NewController(reconciler.ControllerOptions{
		Runner:   d.runner,
		Executor: exec,
		Log:      d.log.Named("reconciler"),
		Workers:  workers,
		Store:    store,
		Fence:    hs.fenceFor(),
	})
	if err := d.ctrl.Restore(); err != nil {
		return fmt.Errorf("%s: %w", store.Path(), err)
	}
	mopts := []metrics.Option{metrics.WithBuildInfo(version, revision())}
	if !d.perNodeMetrics {
		mopts = append(mopts, metrics.WithoutNodeSeries())
	}
	m := metrics.New(reg, d.ctrl.Status, d.runner.connections, mopts...)
	d.ctrl.Observer = m
	d.metrics = m
	if missing {
		d.ctrl.SetLoadError(fmt.Errorf("no manifest yet at %s", abs))
	} else {
		d.apply(l, desired, took)
	}

	token, generated, err := consoleToken(d.tokenFile)
	if err != nil {
		return err
	}
	guard, err := console.NewGuard(token)
	if err != nil {
		return err
	}
	webCfg, err := loadWebConfig(d.svc.webConfig)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.listen, err)
	}
	knownHosts := d.knownHosts
	if knownHosts == "" && l != nil {
		knownHosts = l.Cluster.Spec.SSH.KnownHostsFile
	}
	if knownHosts == "" {
		knownHosts = manifests.DefaultKnownHosts
	}
	// Every write of the wizard (host keys, the manifest) goes through
	// the console's guard.
	setup := wizard.New(wizard.Options{ManifestPath: abs, ArtifactsDir: d.artifactsDir, KnownHostsFile: knownHosts, SSHConfigFile: sshConfigFile,
		Log: d.log.Named("wizard"), Guard: guard.Require})
	var src api.Source = d.ctrl
	if hs != nil {
		src = haSource{Controller: d.ctrl, h: hs}
	}
	opts := console.Options{Source: src, Log: d.log.Named("console"), SetupPath: setupPath}
	con := console.New(opts)
	mux := httpMux(src, d.ctrl, guard.Require, reg, con, setup)
	if d.pprof {
		registerPprof(mux)
	}
	srv := newHTTPServer(mux, d.listen, d.allowedHosts)
	// Shutdown waits for requests to end, and an open page's event stream
	// never does by itself.
	srv.RegisterOnShutdown(con.Close)
	go func() {
		if err := webCfg.serve(srv, ln, d.log.Named("http")); err != nil {
			d.log.Error("http server stopped", zap.Error(err))
		}
	}()
	fields := []zap.Field{zap.String("manifest", abs), zap.String("listen", ln.Addr().String())}
	if desired != nil {
		fields = append(fields, zap.Int("nodes", len(desired.Nodes)), zap.String("generation", desired.Generation))
	}
	d.log.Info("drover daemon started", fields...)
	announceConsole(d.log, d.stderr, ln.Addr(), token, generated, webCfg)
	stopNotify := d.notifySystemd(ctx)
	defer stopNotify()

	changes := make(chan manifests.Change)
	w := &manifests.Watcher{Path: abs, Log: d.log.Named("watch")}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx, changes); err != nil {
			d.log.Error("manifest watch stopped", zap.Error(err))
		}
	}()
	go func() {
		defer wg.Done()
		d.ctrl.Run(ctx, d.grace)
	}()
	go func() {
		defer wg.Done()
		d.loadManifests(ctx, abs, changes, hup)
	}()
	<-ctx.Done()
	// From here a second SIGTERM or Ctrl-C kills at once: every on-node
	// step is safe to cut, so an operator who will not wait need not.
	stop()
	d.log.Info("stopping: no new work, waiting for in-flight actions (signal again to quit now)", zap.Duration("grace", d.grace))
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	d.log.Info("drover daemon stopped")
	return hs.lostErr()
}

// reload parses, validates and compiles a new manifest; on any failure
// the last good manifest stays in force and the error is exported.
func (d *daemon) reload(ctx context.Context, path string, c manifests.Change) {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	err := c.Err
	var l *manifests.Loaded
	var desired *plan.Desired
	start := time.Now()
	if err == nil {
		l, err = manifests.LoadBytesContext(ctx, path, c.Data)
	}
	if ctx.Err() != nil {
		d.logStopped(err)
		return
	}
	loaded := time.Now()
	if err == nil {
		desired, err = plan.Compile(l)
	}
	took := timings{load: loaded.Sub(start), compile: time.Since(loaded)}
	if err != nil && !d.loaded && errors.Is(err, fs.ErrNotExist) {
		d.ctrl.SetLoadError(fmt.Errorf("no manifest yet at %s", path))
		return
	}
	if err != nil {
		msg := "manifest rejected; the last good manifest stays in force"
		if !d.loaded {
			msg = "manifest rejected; no manifest is in force yet"
		}
		d.log.Error(msg, zap.Error(err))
		d.ctrl.SetLoadError(publicLoadError(err))
		return
	}
	d.apply(l, desired, took)
}

// timings are how long a manifest took to load (parse, validate, render
// every node's templates) and to compile; the log says them, as they
// bound how soon an edit is acted on.
type timings struct{ load, compile time.Duration }

func (d *daemon) apply(l *manifests.Loaded, desired *plan.Desired, took timings) {
	for _, w := range l.Warnings {
		d.log.Warn("manifest warning", zap.String("problem", w.String()))
	}
	if !reflect.DeepEqual(d.sshCfg, l.Cluster.Spec.SSH) {
		pool, err := newPool(l.Cluster, d.log.Named("ssh"))
		if err != nil {
			d.log.Error("manifest rejected: ssh settings unusable; the last good manifest stays in force", zap.Error(err))
			d.ctrl.SetLoadError(err)
			return
		}
		d.runner.set(pool)
		d.sshCfg = l.Cluster.Spec.SSH
	}
	put := func() { d.ctrl.SetDesired(desired) }
	if d.hs != nil {
		// The generation is published in etcd before the controller may
		// act on it, and a stale one never is (daemon_agree.go).
		d.hs.agree.adopt(context.Background(), desired.Generation, put)
	} else {
		put()
	}
	d.loaded = true
	d.metrics.SetProbeInterval(desired.ProbeInterval)
	d.log.Info("manifest loaded", zap.String("generation", desired.Generation), zap.Int("nodes", len(desired.Nodes)),
		zap.Int("components", len(desired.Order)), zap.Duration("load", took.load), zap.Duration("compile", took.compile))
}

// lockManifest takes an exclusive lock for the manifest, so a second
// daemon on the same manifest refuses to start (manifestKey names it).
// The lock file is left in place when released: removing it would let a
// daemon that opened it just before lock an unlinked file while a third
// creates and locks a new one.
func lockManifest(dir, manifest string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "daemon-"+manifestKey(manifest)+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		owner, _ := os.ReadFile(path)
		return nil, fmt.Errorf("another drover daemon already manages %s (lock %s held by pid %s)", manifest, path, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Close() }, nil
}

// swapRunner lets a reload with new ssh settings replace the pool while
// workers keep a stable Runner.
type swapRunner struct {
	mu      sync.RWMutex
	pool    *inventory.Pool
	retired []*time.Timer // close replaced pools once their sessions are done
	closers []*inventory.Pool
}

var _ inventory.Querier = (*swapRunner)(nil)

// retireAfter is how long a replaced pool stays open for the sessions
// still running on it.
const retireAfter = time.Minute

func (s *swapRunner) set(p *inventory.Pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.pool; old != nil {
		s.closers = append(s.closers, old)
		s.retired = append(s.retired, time.AfterFunc(retireAfter, func() { old.Close() }))
	}
	s.pool = p
}

func (s *swapRunner) get() *inventory.Pool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pool
}

// errNoPool: nothing runs before the first manifest gives ssh settings
// (the controller has no node to run on by then either).
var errNoPool = errors.New("no manifest loaded yet: no ssh settings")

func (s *swapRunner) Run(ctx context.Context, t inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	p := s.get()
	if p == nil {
		return inventory.Result{}, errNoPool
	}
	return p.Run(ctx, t, script, stdin)
}

func (s *swapRunner) Query(ctx context.Context, t inventory.Target, prelude, script string) (inventory.Result, error) {
	p := s.get()
	if p == nil {
		return inventory.Result{}, errNoPool
	}
	return p.Query(ctx, t, prelude, script)
}

func (s *swapRunner) DialTCP(ctx context.Context, t inventory.Target, addr string) (net.Conn, error) {
	p := s.get()
	if p == nil {
		return nil, errNoPool
	}
	return p.DialTCP(ctx, t, addr)
}

func (s *swapRunner) connections() int {
	if p := s.get(); p != nil {
		return p.Connections()
	}
	return 0
}

// close closes the current pool and every replaced one.
func (s *swapRunner) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.retired {
		if t.Stop() {
			s.closers[i].Close()
		}
	}
	s.retired, s.closers = nil, nil
	if s.pool != nil {
		s.pool.Close()
	}
}

// setCPUs sets GOMAXPROCS for the daemon. It defaults to 1: the daemon
// waits on hundreds of connections and works in bursts of a few ms, and
// with more than one P each packet that readies a goroutine can wake
// another thread to run it (futex and epoll calls that cost more than the
// work). Measured over 100 nodes at the default interval, one P used 39%
// less CPU (docs/BENCHMARKS.md). What needs more than a core (the
// handshakes of a cold start, encrypting uploads to many nodes) runs
// slower, not worse. The GOMAXPROCS variable, when set, wins over the
// default but not over an explicit --cpus.
func setCPUs(cmd *cobra.Command, cpus int) {
	if !cmd.Flags().Changed("cpus") && os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if cpus > 0 {
		runtime.GOMAXPROCS(cpus)
	}
}
