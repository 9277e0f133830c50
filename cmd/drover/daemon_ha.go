package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/ha"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// Several daemons on one cluster (issue 22): with --etcd-endpoints each
// campaigns in etcd's election; the one that leads runs the controller
// as a lone daemon does, with its state in etcd and a fence on every step
// (its ha.Term). The others are standbys: they touch no node, serve
// /healthz and /metrics, and forward the API to the leader. A leader
// whose term ends (its lease lost: killed, partitioned, etcd without
// quorum) starts no step from then on, keeps probing while etcd is away,
// and once etcd answers again exits with an error, so its service
// manager (Restart=on-failure) starts it again as a fresh candidate: a
// new controller that reads the state the new leader wrote.

// haOptions are the daemon's HA flags.
type haOptions struct {
	endpoints          string
	caCert, cert, key  string
	name, advertiseURL string
	leaseTTL           time.Duration
}

func addHAFlags(cmd *cobra.Command, o *haOptions) {
	f := cmd.Flags()
	f.StringVar(&o.endpoints, "etcd-endpoints", "", "etcd client URLs, comma-separated: run as one of several daemons, the one elected in etcd leads and the others stand by (state in etcd, not --state-dir)")
	f.StringVar(&o.caCert, "etcd-cacert", "", "CA certificate file that signs the etcd servers' certificates")
	f.StringVar(&o.cert, "etcd-cert", "", "client certificate file for etcd")
	f.StringVar(&o.key, "etcd-key", "", "client key file for etcd")
	f.StringVar(&o.name, "ha-name", defaultHAName(), "this daemon's name among the cluster's daemons (default: the host name)")
	f.StringVar(&o.advertiseURL, "ha-advertise-url", "", "URL standbys forward the API to while this daemon leads (default: http://<--listen>)")
	f.DurationVar(&o.leaseTTL, "lease-ttl", 10*time.Second, "etcd lease of this daemon's candidacy: a dead leader is replaced after at most this long")
	_ = cmd.MarkFlagFilename("etcd-cacert")
	_ = cmd.MarkFlagFilename("etcd-cert")
	_ = cmd.MarkFlagFilename("etcd-key")
}

func defaultHAName() string {
	h, _ := os.Hostname()
	return h
}

// enabled says whether the daemon is one of several.
func (o haOptions) enabled() bool { return o.endpoints != "" }

// haState is what the daemon knows of the election, for metrics, the
// standby's answers and the exit.
type haState struct {
	opts      haOptions
	cli       *clientv3.Client
	prefix    string
	name, url string
	log       *zap.Logger
	gens      *ha.Generations
	agree     *agreement
	// shared reads the cluster's state as the leader wrote it, for a
	// standby's own status answer.
	shared *state.Etcd

	mu      sync.Mutex
	member  *ha.Member // nil while (re)joining
	term    *ha.Term
	leader  ha.Info
	members int
	lost    error // why the term ended
	etcdErr error // the last failed request to etcd; nil once one succeeds
	desired *plan.Desired
	// stopWatch ends watch.
	stopWatch func()
}

// errLostLead ends a daemon whose term ended, for its service manager to
// start it again.
var errLostLead = errors.New("lost the lead in etcd: restarting to campaign again")

// etcdClient connects to the endpoints, with TLS when certificates are given.
func (o haOptions) etcdClient() (*clientv3.Client, error) {
	var eps []string
	for _, e := range strings.Split(o.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("--etcd-endpoints: no endpoint")
	}
	// 10s is the least keep-alive time gRPC allows (it raises lower ones).
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, DialKeepAliveTime: 10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second, Logger: zap.NewNop()}
	if o.caCert != "" || o.cert != "" || o.key != "" {
		if (o.cert == "") != (o.key == "") {
			return nil, errors.New("--etcd-cert and --etcd-key go together")
		}
		info := transport.TLSInfo{TrustedCAFile: o.caCert, CertFile: o.cert, KeyFile: o.key}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
		tc.MinVersion = tls.VersionTLS12
		cfg.TLS = tc
	}
	return clientv3.New(cfg)
}

// haPrefix is a cluster's keys in etcd.
func haPrefix(cluster string) string { return "/drover/" + cluster + "/" }

// startHA connects to etcd; the standby loop joins the election.
func (d *daemon) startHA(cluster, listen string) (*haState, error) {
	cli, err := d.ha.etcdClient()
	if err != nil {
		return nil, err
	}
	url := d.ha.advertiseURL
	if url == "" {
		url = "http://" + listen
	}
	h := &haState{opts: d.ha, cli: cli, prefix: haPrefix(cluster), name: d.ha.name, url: url, log: d.log.Named("ha")}
	if h.name == "" {
		cli.Close()
		return nil, errors.New("ha: the daemon needs a name (--ha-name)")
	}
	h.gens = ha.NewGenerations(cli, h.prefix)
	h.agree = &agreement{store: etcdGenerations{gens: h.gens}}
	if h.shared, err = state.NewEtcd(cli, state.EtcdOptions{Prefix: h.prefix + "state/", Serializable: true}); err != nil {
		cli.Close()
		return nil, err
	}
	return h, nil
}

// join opens a session in the election, trying again every second
// while etcd does not answer; nil once ctx ended.
func (h *haState) join(ctx context.Context) *ha.Member {
	for {
		jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := ha.Join(jctx, ha.Config{Client: h.cli, Prefix: h.prefix, Name: h.name, URL: h.url, LeaseTTL: h.opts.leaseTTL, Log: h.log})
		cancel()
		if err == nil {
			h.mu.Lock()
			h.member, h.etcdErr = m, nil
			h.mu.Unlock()
			return m
		}
		if ctx.Err() != nil {
			return nil
		}
		h.mu.Lock()
		first := h.etcdErr == nil
		h.etcdErr = err
		h.mu.Unlock()
		if first {
			h.log.Warn("cannot join the election in etcd: trying again every second", zap.String("endpoints", h.opts.endpoints), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (h *haState) close() {
	if h.stopWatch != nil {
		h.stopWatch()
	}
	h.mu.Lock()
	m := h.member
	h.mu.Unlock()
	if m != nil {
		_ = m.Close()
	}
	h.cli.Close()
}

// store is the cluster's shared state, whose writes hold only while term
// leads.
func (h *haState) store(term *ha.Term) (*state.Etcd, error) {
	return state.NewEtcd(h.cli, state.EtcdOptions{Prefix: h.prefix + "state/", Guard: term.Guard})
}

// MayAct is the controller's Fence: the term lasts, and the manifest
// in force is the generation published in etcd.
func (h *haState) MayAct() error {
	h.mu.Lock()
	t := h.term
	h.mu.Unlock()
	if t == nil {
		return errors.New("not the leader")
	}
	if err := t.MayAct(); err != nil {
		return err
	}
	return h.agree.MayAct()
}

// watch keeps leader, members and the agreement current until ctx ends.
func (h *haState) watch(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		h.mu.Lock()
		m := h.member
		h.mu.Unlock()
		if m != nil {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			info, ok, lerr := m.Leader(qctx)
			n, merr := m.Members(qctx)
			cancel()
			h.mu.Lock()
			if lerr == nil {
				h.leader = info
				if !ok {
					h.leader = ha.Info{}
				}
			}
			if merr == nil {
				h.members = n
			}
			h.etcdErr = lerr
			if h.etcdErr == nil {
				h.etcdErr = merr
			}
			h.mu.Unlock()
		}
		h.agree.retry(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leading says whether this daemon's term lasts.
func (h *haState) leading() bool {
	h.mu.Lock()
	t := h.term
	h.mu.Unlock()
	return t != nil && t.MayAct() == nil
}

// snapshot is the HA metrics' view of the election.
func (h *haState) snapshot() metrics.HAState {
	lead := h.leading()
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.agree.view()
	st := metrics.HAState{Leading: lead, Members: h.members, Leader: h.leader.Name, Fenced: h.lost != nil,
		ManifestMismatch: v.Mismatch, ManifestStale: v.Stale}
	if v.Acted != nil {
		st.ActedSeq = v.Acted.Seq
	}
	return st
}

// status is the HA part of this daemon's status: who leads, the
// agreement, and why it changes no node.
func (h *haState) status() *plan.HAStatus {
	lead := h.leading()
	v := h.agree.view()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := &plan.HAStatus{Name: h.name, Leading: lead, Leader: h.leader.Name, Members: h.members,
		Manifest: v.Own, ManifestMismatch: v.Mismatch, ManifestStale: v.Stale}
	if g := v.Acted; g != nil {
		st.Acted = &plan.ActedGeneration{Hash: g.Hash, Seq: g.Seq, Revision: g.Revision, By: g.By, Time: g.Time}
	}
	st.Why = haWhy(h.term != nil, h.lost, v.Why, h.leader.Name, h.etcdErr)
	return st
}

// haWhy says why a daemon changes no node ("" when it may): a term that
// ended, a manifest not agreed, or standing by (and etcd's trouble).
func haWhy(term bool, lost error, notAgreed, leader string, etcdErr error) string {
	var why string
	switch {
	case lost != nil:
		why = "fenced, this daemon starts no step: " + lost.Error()
	case term && notAgreed != "":
		why = notAgreed
	case term:
		return ""
	case leader != "":
		why = "standby: " + leader + " leads"
	default:
		why = "standby: no daemon leads the cluster now"
	}
	if etcdErr != nil {
		why += "; etcd does not answer: " + etcdErr.Error()
	}
	return why
}

// standby serves, until this daemon leads, what a standby answers on
// --listen: /healthz, /metrics, the status (the leader's, or etcd's
// shared state when no leader answers) and the rest of the API forwarded
// to the leader (or 503 naming it, or saying none leads). It joins the
// election and campaigns; a session that ends while it waits (etcd away
// for longer than the lease) is replaced by a new one.
func (d *daemon) standby(ctx context.Context, h *haState, abs string) (*ha.Term, error) {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewHACollector(h.snapshot))
	own := http.NewServeMux()
	api.Register(own, standbySource{h}, reg)
	mux := http.NewServeMux()
	for _, p := range []string{api.PathMetrics, api.PathHealthz, api.PathStatus} {
		mux.Handle("GET "+p, own)
	}
	mux.HandleFunc("/", h.forward)
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", d.listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	d.log.Info("standby: campaigning for the lead", zap.String("name", h.name), zap.String("listen", ln.Addr().String()))
	// Under systemd a standby is up and alive: ready, and its watchdog fed
	// while it waits (the controller that Alive asks does not run yet).
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady+"\nSTATUS=standby: another daemon leads")
	wctx, stopStandby := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopStandby()
	if interval, _ := sddaemon.SdWatchdogEnabled(false); interval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(interval / 3)
			defer t.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-t.C:
					_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.watchOwnManifest(wctx, abs)
	}()
	for {
		m := h.join(ctx)
		if m == nil {
			return nil, nil
		}
		term, err := m.Campaign(ctx)
		if err == nil {
			h.mu.Lock()
			h.term = term
			h.leader = ha.Info{Name: h.name}
			h.mu.Unlock()
			return term, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		// The session ended while this daemon waited (etcd unreachable or
		// without quorum for longer than the lease): a new one, once
		// etcd answers.
		h.log.Warn("standby: the etcd session ended while campaigning; joining again", zap.Error(err))
		h.mu.Lock()
		h.member = nil
		h.mu.Unlock()
		_ = m.Close()
	}
}

// watchOwnManifest keeps a standby's manifest hash (and its Desired, for
// its own status) current as its file changes.
func (h *haState) watchOwnManifest(ctx context.Context, abs string) {
	changes := make(chan manifests.Change)
	w := &manifests.Watcher{Path: abs, Log: h.log.Named("watch")}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(ctx, changes)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			if c.Err != nil {
				continue
			}
			l, err := manifests.LoadBytesContext(ctx, abs, c.Data)
			if err != nil {
				continue
			}
			desired, err := plan.Compile(l)
			if err != nil {
				continue
			}
			h.setOwn(desired)
		}
	}
}

// setOwn notes a standby's manifest.
func (h *haState) setOwn(d *plan.Desired) {
	h.mu.Lock()
	h.desired = d
	h.mu.Unlock()
	h.agree.setOwn(d.Generation)
}

// standbySource is a standby's answer to the status API: the leader's
// status when it answers, else the shared state in etcd; with this
// daemon's own HA part either way.
type standbySource struct{ h *haState }

func (s standbySource) Status() plan.ClusterStatus {
	st, err := s.h.leaderStatus()
	answer := "leader"
	if err != nil {
		st, answer = s.h.sharedStatus(), "etcd"
	}
	st.HA = s.h.status()
	st.HA.Answer = answer
	if err != nil {
		st.HA.Why += "; nodes shown from the shared state in etcd (" + err.Error() + ")"
	}
	return st
}

func (standbySource) CurrentPlan() plan.Plan { return plan.Plan{} }
func (standbySource) Ready() bool            { return false }

// leaderStatus is the leading daemon's status, asked over HTTP.
func (h *haState) leaderStatus() (plan.ClusterStatus, error) {
	h.mu.Lock()
	leader := h.leader
	h.mu.Unlock()
	if leader.Name == "" || leader.URL == "" || leader.Name == h.name {
		return plan.ClusterStatus{}, errors.New("no daemon leads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(leader.URL, "/")+api.PathStatus, nil)
	if err != nil {
		return plan.ClusterStatus{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return plan.ClusterStatus{}, fmt.Errorf("the leader %s does not answer: %w", leader.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return plan.ClusterStatus{}, fmt.Errorf("the leader %s answers %s", leader.Name, resp.Status)
	}
	var st plan.ClusterStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&st); err != nil {
		return plan.ClusterStatus{}, fmt.Errorf("the leader %s's status: %w", leader.Name, err)
	}
	return st, nil
}

// sharedStatus is the cluster as the leader left it in etcd, over this
// standby's own manifest.
func (h *haState) sharedStatus() plan.ClusterStatus {
	h.mu.Lock()
	d := h.desired
	h.mu.Unlock()
	if d == nil {
		return plan.ClusterStatus{LoadError: "no manifest"}
	}
	st, err := reconciler.StoredStatus(d, h.shared)
	if err != nil {
		return plan.ClusterStatus{Cluster: d.Cluster, LoadSuccess: true, LoadError: err.Error()}
	}
	return st
}

// haSource is a leading daemon's controller with its HA part in the status.
type haSource struct {
	*reconciler.Controller
	h *haState
}

func (s haSource) Status() plan.ClusterStatus {
	st := s.Controller.Status()
	st.HA = s.h.status()
	return st
}

// forward answers a standby's request: proxied to the leader when one is
// known, else 503 saying so.
func (h *haState) forward(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	leader := h.leader
	h.mu.Unlock()
	w.Header().Set("X-Drover-Leader", leader.Name)
	if leader.Name == "" || leader.Name == h.name || leader.URL == "" {
		http.Error(w, "standby: no daemon leads the cluster now", http.StatusServiceUnavailable)
		return
	}
	u, err := url.Parse(leader.URL)
	if err != nil {
		http.Error(w, fmt.Sprintf("standby: leader %s has a bad URL %q", leader.Name, leader.URL), http.StatusBadGateway)
		return
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, fmt.Sprintf("standby: the leader is %s at %s, which does not answer: %v", leader.Name, leader.URL, err), http.StatusBadGateway)
	}
	p.ServeHTTP(w, r)
}

// lead watches the term: when it ends, the fence is already closed for
// every step; the daemon goes on probing while etcd is away and, once
// etcd answers again, stop ends the daemon's run.
func (h *haState) lead(ctx context.Context, log *zap.Logger, stop context.CancelFunc) {
	h.mu.Lock()
	term := h.term
	h.mu.Unlock()
	select {
	case <-ctx.Done():
		return
	case <-term.Ended():
	}
	err := term.MayAct()
	h.mu.Lock()
	h.lost = err
	h.mu.Unlock()
	log.Error("lost the lead: this daemon starts no step; it probes on and restarts once etcd answers", zap.Error(err))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := h.cli.Get(qctx, h.prefix+"leader/")
		cancel()
		if err == nil {
			stop()
			return
		}
	}
}

// lostErr is the error the daemon's run ends with.
func (h *haState) lostErr() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return fmt.Errorf("%w (%v)", errLostLead, h.lost)
	}
	return nil
}

// haStart joins the election and waits, as a standby, until this daemon
// leads. It returns the shared store and a context that ends when the
// daemon must stop (ctx ended, or the term ended and etcd answers again).
// A nil store: ctx ended while standing by.
func (d *daemon) haStart(ctx context.Context, abs string) (*haState, namedStore, context.Context, error) {
	_, desired, err := compile(abs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("with --etcd-endpoints the manifest must be there at start (its metadata.name keys the cluster in etcd): %w", err)
	}
	h, err := d.startHA(desired.Cluster, d.listen)
	if err != nil {
		return nil, nil, nil, err
	}
	h.setOwn(desired)
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.watch(wctx)
	}()
	h.stopWatch = func() { stopWatch(); wg.Wait() }
	term, err := d.standby(ctx, h, abs)
	if err != nil || term == nil {
		h.close()
		return nil, nil, nil, err
	}
	store, err := h.store(term)
	if err != nil {
		h.close()
		return nil, nil, nil, err
	}
	h.agree.lead(etcdGenerations{gens: h.gens, term: term})
	lctx, stop := context.WithCancel(ctx)
	go h.lead(lctx, h.log, stop)
	return h, store, lctx, nil
}

// namedStore is a state store that names itself in messages (its file,
// or its etcd prefix).
type namedStore interface {
	state.Store
	Path() string
}

// fenceFor is the controller's fence: none for a daemon alone.
func (h *haState) fenceFor() execute.Fence {
	if h == nil {
		return nil
	}
	return h
}
