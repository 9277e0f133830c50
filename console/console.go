package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

// Source is what the console shows; *reconciler.Controller is one.
type Source interface {
	Status() plan.ClusterStatus
	CurrentPlan() plan.Plan
}

var _ Source = (*reconciler.Controller)(nil)

// DiffSource is a Source that can also give its plan with content diffs
// (the node's bytes read for the files that differ); the plan views show
// them when the Source is one.
type DiffSource interface {
	PlanWithDiffs(ctx context.Context) plan.Plan
}

var _ DiffSource = (*reconciler.Controller)(nil)

// plan is the source's plan, with diffs when it can give them.
func (c *Console) plan(r *http.Request) plan.Plan {
	if ds, ok := c.opts.Source.(DiffSource); ok {
		return ds.PlanWithDiffs(r.Context())
	}
	return c.opts.Source.CurrentPlan()
}

// Paths the console serves (besides the API of package api).
const (
	PathCluster = "/"
	PathNode    = "/nodes/" // + node name
	PathEvents  = "/api/v1/events"
	PathAssets  = "/assets/"
	// Fragments are the pages' main regions alone: the page's script
	// fetches one when the status changes and swaps it in.
	pathFragment = "/ui/fragment/"
)

// Options configure a Console; zero values take defaults.
type Options struct {
	Source Source
	Log    *zap.Logger
	// Poll is how often an event stream looks for a changed status
	// (default 1s); Heartbeat how often it says it is alive when nothing
	// changed (default 15s), so a page can tell a quiet cluster from a
	// dead connection.
	Poll, Heartbeat time.Duration
	// SetupPath, when set, is linked from every page as the setup wizard.
	SetupPath string
	// MaxStreams bounds the event streams open at once (default
	// DefaultMaxStreams); one more is refused with 503. Each holds a
	// connection and a goroutine for as long as its page is open.
	MaxStreams int
}

// DefaultMaxStreams is enough for every operator's tabs and a few
// dashboards, and few enough that opening streams cannot exhaust the
// daemon's descriptors.
const DefaultMaxStreams = 64

// Console serves the web console: the cluster page, the node pages, their
// fragments, the status event stream and the embedded assets. Close it
// when the HTTP server shuts down (http.Server.RegisterOnShutdown): the
// event streams are long requests that Shutdown would otherwise wait for.
type Console struct {
	opts  Options
	pages *template.Template
	// done ends every event stream.
	done      chan struct{}
	closeOnce sync.Once
	// streams counts open event streams (tests, and the shutdown log).
	streams sync.WaitGroup
	// open is how many event streams are open, for MaxStreams.
	open atomic.Int64

	snapMu sync.Mutex
	snap   []byte
	snapAt time.Time
	// nodeSnap is the status cut for delta streams (events.go), read at
	// most once per half poll period like snap.
	nodeSnapMu sync.Mutex
	nodeSnap   *nodeSnapshot
}

//go:embed web
var webFS embed.FS

// New returns a console over o.Source.
func New(o Options) *Console {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	return &Console{
		opts:  o,
		pages: template.Must(template.ParseFS(webFS, "web/templates/*.html")),
		done:  make(chan struct{}),
	}
}

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET "+PathAssets, secure(http.StripPrefix(PathAssets, http.FileServerFS(static))))
	mux.Handle("GET /{$}", secure(http.HandlerFunc(c.serveCluster)))
	mux.Handle("GET "+PathNode+"{name}", secure(http.HandlerFunc(c.serveNode)))
	mux.Handle("GET "+pathFragment+"cluster", secure(http.HandlerFunc(c.serveClusterFragment)))
	mux.Handle("GET "+pathFragment+"nodes/{name}", secure(http.HandlerFunc(c.serveNodeFragment)))
	mux.HandleFunc("GET "+PathEvents, c.serveEvents)
}

// Handler is a mux with the console's routes alone.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	c.Register(mux)
	return mux
}

// Close ends every event stream and refuses new ones. It does not wait.
func (c *Console) Close() {
	c.closeOnce.Do(func() { close(c.done) })
}

// page is what the layout template shows around a fragment.
type page struct {
	Title     string
	Fragment  string // URL of the main region alone
	Main      template.HTML
	SetupPath string
}

func (c *Console) serveCluster(w http.ResponseWriter, r *http.Request) {
	q, err := parseClusterQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "cluster page: "+err.Error(), http.StatusBadRequest)
		return
	}
	v := newClusterView(c.opts.Source.Status(), c.plan(r), q)
	title := v.Cluster
	if title == "" {
		title = "cluster"
	}
	fragment := pathFragment + "cluster"
	if e := q.encode(); e != "" {
		fragment += "?" + e
	}
	c.render(w, "cluster", v, &page{Title: title, Fragment: fragment})
}

func (c *Console) serveClusterFragment(w http.ResponseWriter, r *http.Request) {
	q, err := parseClusterQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "cluster page: "+err.Error(), http.StatusBadRequest)
		return
	}
	c.render(w, "cluster", newClusterView(c.opts.Source.Status(), c.plan(r), q), nil)
}

func (c *Console) serveNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := newNodeView(c.opts.Source.Status(), c.plan(r), name)
	if !ok {
		c.notFound(w, name)
		return
	}
	c.render(w, "node", v, &page{Title: name, Fragment: pathFragment + "nodes/" + name})
}

func (c *Console) serveNodeFragment(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := newNodeView(c.opts.Source.Status(), c.plan(r), name)
	if !ok {
		c.notFound(w, name)
		return
	}
	c.render(w, "node", v, nil)
}

func (c *Console) notFound(w http.ResponseWriter, name string) {
	w.WriteHeader(http.StatusNotFound)
	c.render(w, "missing", name, &page{Title: "no node " + name})
}

// render executes the fragment template name with data, inside the
// layout when p is set. It renders into a buffer first, so a template
// error is a clean 500 and not half a page.
func (c *Console) render(w http.ResponseWriter, name string, data any, p *page) {
	var main bytes.Buffer
	if err := c.pages.ExecuteTemplate(&main, name, data); err != nil {
		c.opts.Log.Error("render console page", zap.String("template", name), zap.Error(err))
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out := &main
	if p != nil {
		p.Main = template.HTML(main.String()) // produced by html/template: already escaped
		p.SetupPath = c.opts.SetupPath
		out = &bytes.Buffer{}
		if err := c.pages.ExecuteTemplate(out, "layout", p); err != nil {
			c.opts.Log.Error("render console layout", zap.Error(err))
			http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(out.Bytes())
}

// secure sets the headers every console response carries: the page runs
// only its own scripts and styles, talks only to its own origin, cannot
// be framed (clickjacking the wizard's buttons), and never sends the URL
// (which may hold the token on first load) as a Referer.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
