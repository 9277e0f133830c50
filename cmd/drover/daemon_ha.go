package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/ha"
	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/reconciler/execute"
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
	opts   haOptions
	cli    *clientv3.Client
	member *ha.Member
	prefix string

	mu      sync.Mutex
	term    *ha.Term
	leader  ha.Info
	members int
	lost    error // why the term ended
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
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, DialKeepAliveTime: 5 * time.Second,
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

// startHA connects to etcd and joins the cluster's election.
func (d *daemon) startHA(ctx context.Context, cluster, listen string) (*haState, error) {
	cli, err := d.ha.etcdClient()
	if err != nil {
		return nil, err
	}
	name := d.ha.name
	url := d.ha.advertiseURL
	if url == "" {
		url = "http://" + listen
	}
	h := &haState{opts: d.ha, cli: cli, prefix: haPrefix(cluster)}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h.member, err = ha.Join(jctx, ha.Config{Client: cli, Prefix: h.prefix, Name: name, URL: url, LeaseTTL: d.ha.leaseTTL, Log: d.log.Named("ha")})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("join the election at %s: %w", d.ha.endpoints, err)
	}
	return h, nil
}

func (h *haState) close() {
	if h.member != nil {
		_ = h.member.Close()
	}
	h.cli.Close()
}

// store is the cluster's shared state, whose writes hold only while term
// leads.
func (h *haState) store(term *ha.Term) (*state.Etcd, error) {
	return state.NewEtcd(h.cli, state.EtcdOptions{Prefix: h.prefix + "state/", Guard: term.Guard})
}

// fence is the controller's Fence: the term, once there is one.
func (h *haState) fence() execute.Fence {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.term == nil {
		return closedFence{}
	}
	return h.term
}

type closedFence struct{}

func (closedFence) MayAct() error { return errors.New("not the leader") }

// watch keeps leader and members current until ctx ends.
func (h *haState) watch(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		info, ok, lerr := h.member.Leader(qctx)
		n, merr := h.member.Members(qctx)
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
		h.mu.Unlock()
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
	return metrics.HAState{Leading: lead, Members: h.members, Leader: h.leader.Name, Fenced: h.lost != nil}
}

// standby serves, until this daemon leads, what a standby answers on
// --listen: /healthz, /metrics, and the API forwarded to the leader (or
// 503 naming it, or saying none leads).
func (d *daemon) standby(ctx context.Context, h *haState) (*ha.Term, error) {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewHACollector(h.snapshot))
	mux := http.NewServeMux()
	mux.Handle("GET "+api.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+api.PathHealthz, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
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
	d.log.Info("standby: campaigning for the lead", zap.String("name", h.member.Name()), zap.String("listen", ln.Addr().String()))
	// Under systemd a standby is up and alive: ready, and its watchdog fed
	// while it waits (the controller that Alive asks does not run yet).
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady+"\nSTATUS=standby: another daemon leads")
	wctx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	if interval, _ := sddaemon.SdWatchdogEnabled(false); interval > 0 {
		go func() {
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
	term, err := h.member.Campaign(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, err
	}
	h.mu.Lock()
	h.term = term
	h.leader = ha.Info{Name: h.member.Name()}
	h.mu.Unlock()
	return term, nil
}

// forward answers a standby's request: proxied to the leader when one is
// known, else 503 saying so.
func (h *haState) forward(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	leader := h.leader
	h.mu.Unlock()
	w.Header().Set("X-Drover-Leader", leader.Name)
	if leader.Name == "" || leader.Name == h.member.Name() || leader.URL == "" {
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
	l, _, err := compile(abs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("with --etcd-endpoints the manifest must be there at start (its metadata.name keys the cluster in etcd): %w", err)
	}
	h, err := d.startHA(ctx, l.Cluster.Metadata.Name, d.listen)
	if err != nil {
		return nil, nil, nil, err
	}
	go h.watch(ctx)
	term, err := d.standby(ctx, h)
	if err != nil || term == nil {
		h.close()
		return nil, nil, nil, err
	}
	store, err := h.store(term)
	if err != nil {
		h.close()
		return nil, nil, nil, err
	}
	lctx, stop := context.WithCancel(ctx)
	go h.lead(lctx, d.log.Named("ha"), stop)
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
	return h.fence()
}
