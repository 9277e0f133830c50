// Package wizard is the setup wizard of drover's web console: a page that
// walks an operator through a new cluster (SSH login, nodes and roles,
// components from the artifacts folder), checks every node (preflight),
// shows the manifest and the plan, and writes the manifest to the path
// the daemon watches. It keeps no secret: the SSH key is named by its
// path on this host and read only while preflight runs.
//
// Endpoints (JSON; every POST goes through Options.Guard):
//
//	GET  /setup                         the page (assets under /setup/)
//	GET  /api/v1/wizard/artifacts       artifacts found, templates, defaults
//	POST /api/v1/wizard/preflight       Setup -> PreflightReport (dials every node)
//	POST /api/v1/wizard/hostkeys/accept {hostport, fingerprint}: append the key preflight saw
//	POST /api/v1/wizard/review          {setup} or {manifest} -> Review (validation + plan)
//	POST /api/v1/wizard/write           {manifest, baseHash} -> Written
package wizard

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

//go:embed assets
var assets embed.FS

// Options configure the wizard. ManifestPath and Guard are required.
type Options struct {
	// ManifestPath is the manifest the daemon watches; write replaces it.
	ManifestPath string
	// ArtifactsDir is scanned for <name>-<version>.tar.gz files ("" offers none).
	ArtifactsDir string
	// KnownHostsFile is drover's known_hosts: accepted keys are appended
	// to it, and the manifest the wizard writes points at it.
	KnownHostsFile string
	Log            *zap.Logger
	// Guard wraps every POST endpoint: the console's token and
	// cross-site check (console.Guard.Require). Without one, every POST
	// is refused: the wizard never runs unguarded.
	Guard func(http.Handler) http.Handler

	// SSHConfigFile is the OpenSSH client config preflight reads, as the
	// daemon's --ssh-config ("": the manifest's ssh.configFile, else ~/.ssh/config).
	SSHConfigFile string
	// Dial opens preflight's TCP connections (default net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock preflight compares node clocks with.
	Now func() time.Time
	// ConnectTimeout bounds a node's TCP dial plus SSH handshake (default
	// 10s); FactsTimeout its facts session (default 20s).
	ConnectTimeout time.Duration
	FactsTimeout   time.Duration
	// PlanTimeout bounds the review's probe of every node (default 2m).
	PlanTimeout time.Duration
	// NewRunner builds the runner the review's plan probes with (default:
	// the inventory.Pool the daemon would build from the same settings).
	NewRunner func(manifests.SSH) (inventory.Runner, func(), error)
}

// Wizard serves the setup wizard.
type Wizard struct {
	opts       Options
	log        *zap.Logger
	artifacts  *artifactScanner
	knownHosts string // drover's known_hosts, ~ expanded
	mux        *http.ServeMux

	mu   sync.Mutex
	seen map[string]ssh.PublicKey // host keys preflight saw, by host:port

	writeMu sync.Mutex // one manifest write at a time
}

// maxBody bounds a request: a manifest is at most
// manifests.MaxManifestBytes, plus JSON quoting.
const maxBody = 2*manifests.MaxManifestBytes + 64<<10

// New returns the wizard's handler. Mount it for "/setup", "/setup/" and
// "/api/v1/wizard/".
func New(opts Options) http.Handler {
	return newWizard(opts)
}

func newWizard(opts Options) *Wizard {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Guard == nil {
		opts.Guard = refuseAll
	}
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = d.DialContext
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.FactsTimeout <= 0 {
		opts.FactsTimeout = 20 * time.Second
	}
	if opts.PlanTimeout <= 0 {
		opts.PlanTimeout = 2 * time.Minute
	}
	if opts.NewRunner == nil {
		o := opts
		opts.NewRunner = func(s manifests.SSH) (inventory.Runner, func(), error) { return poolRunner(s, o) }
	}
	w := &Wizard{
		opts:       opts,
		log:        opts.Log,
		artifacts:  &artifactScanner{dir: opts.ArtifactsDir},
		knownHosts: manifests.ExpandHome(opts.KnownHostsFile),
		seen:       map[string]ssh.PublicKey{},
	}
	static, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix("/setup/", http.FileServerFS(static))
	m := http.NewServeMux()
	m.HandleFunc("GET /setup", w.page)
	m.Handle("GET /setup/", noIndex(files))
	m.HandleFunc("GET /api/v1/wizard/artifacts", w.handleArtifacts)
	guard := opts.Guard
	m.Handle("POST /api/v1/wizard/preflight", guard(http.HandlerFunc(w.handlePreflight)))
	m.Handle("POST /api/v1/wizard/hostkeys/accept", guard(http.HandlerFunc(w.handleAccept)))
	m.Handle("POST /api/v1/wizard/review", guard(http.HandlerFunc(w.handleReview)))
	m.Handle("POST /api/v1/wizard/write", guard(http.HandlerFunc(w.handleWrite)))
	w.mux = m
	return w
}

func (w *Wizard) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.mux.ServeHTTP(rw, r) }

// refuseAll stands in for a missing guard.
func refuseAll(http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		writeJSONError(rw, http.StatusForbidden, "the setup wizard has no token guard configured")
	})
}

// noIndex serves files but not directory listings.
func noIndex(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/setup/" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(rw, r)
			return
		}
		h.ServeHTTP(rw, r)
	})
}

func (w *Wizard) page(rw http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/setup.html")
	if err != nil {
		writeJSONError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.Write(b)
}

// ArtifactsResponse is what the page loads first.
type ArtifactsResponse struct {
	Dir        string     `json:"dir"`
	Convention string     `json:"convention"`
	Artifacts  []Artifact `json:"artifacts"`
	Skipped    []Skipped  `json:"skipped"`
	Error      string     `json:"error,omitempty"`
	Templates  []Template `json:"templates"`
	Defaults   Defaults   `json:"defaults"`
}

// Defaults prefill the form.
type Defaults struct {
	ManifestPath   string `json:"manifestPath"`
	ManifestExists bool   `json:"manifestExists"`
	KnownHostsFile string `json:"knownHostsFile"`
	InstallRoot    string `json:"installRoot"`
	ProbeInterval  string `json:"probeInterval"`
	User           string `json:"user"`
	Port           int    `json:"port"`
	// SSHConfigHosts are the Host aliases of the operator's ssh_config,
	// offered as node addresses (preflight resolves them as the daemon does).
	SSHConfigHosts []string `json:"sshConfigHosts"`
}

func (w *Wizard) handleArtifacts(rw http.ResponseWriter, r *http.Request) {
	arts, skipped, err := w.artifacts.scan()
	resp := ArtifactsResponse{
		Dir: w.opts.ArtifactsDir, Convention: ArtifactConvention,
		Artifacts: orEmpty(arts), Skipped: orEmpty(skipped), Templates: templates(),
	}
	if err != nil {
		resp.Error = err.Error()
	}
	_, exists := w.currentHash()
	resp.Defaults = Defaults{
		ManifestPath: w.opts.ManifestPath, ManifestExists: exists, KnownHostsFile: w.opts.KnownHostsFile,
		InstallRoot: manifests.DefaultInstallRoot, ProbeInterval: manifests.DefaultProbeInterval,
		User: manifests.DefaultSSHUser, Port: manifests.DefaultSSHPort,
		SSHConfigHosts: w.sshConfigHosts(),
	}
	writeJSON(rw, http.StatusOK, resp)
}

func (w *Wizard) handlePreflight(rw http.ResponseWriter, r *http.Request) {
	var s Setup
	if !readJSON(rw, r, &s) {
		return
	}
	if len(s.Nodes) == 0 {
		writeJSONError(rw, http.StatusBadRequest, "no nodes to check")
		return
	}
	writeJSON(rw, http.StatusOK, w.preflight(r.Context(), s))
}

// AcceptRequest names a host key preflight showed: the server appends the
// key it saw itself, and only when the fingerprint is the one the
// operator confirmed, so a request can never plant a key of its choosing.
type AcceptRequest struct {
	HostPort    string `json:"hostport"`
	Fingerprint string `json:"fingerprint"`
}

func (w *Wizard) handleAccept(rw http.ResponseWriter, r *http.Request) {
	var req AcceptRequest
	if !readJSON(rw, r, &req) {
		return
	}
	key, ok := w.seenKey(req.HostPort)
	switch {
	case !ok:
		writeJSONError(rw, http.StatusNotFound, fmt.Sprintf("no host key seen for %s: run preflight first", req.HostPort))
		return
	case ssh.FingerprintSHA256(key) != req.Fingerprint:
		writeJSONError(rw, http.StatusConflict, fmt.Sprintf("%s last presented %s, not %s: run preflight again", req.HostPort, ssh.FingerprintSHA256(key), req.Fingerprint))
		return
	}
	added, err := w.acceptKey(req.HostPort, key)
	var refused *inventory.HostKeyError
	switch {
	case errors.As(err, &refused):
		// Another key is recorded (or this one revoked): never replaced here.
		writeJSONError(rw, http.StatusConflict, err.Error())
		return
	case err != nil:
		w.log.Error("accept host key", zap.String("hostport", req.HostPort), zap.Error(err))
		writeJSONError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	if added {
		w.log.Info("host key accepted in the setup wizard", zap.String("hostport", req.HostPort),
			zap.String("type", key.Type()), zap.String("fingerprint", req.Fingerprint), zap.String("file", w.knownHosts))
	}
	writeJSON(rw, http.StatusOK, map[string]any{"hostport": req.HostPort, "fingerprint": req.Fingerprint, "added": added, "file": w.knownHosts})
}

// sshConfigHosts lists the ssh_config's concrete Host aliases; an
// unusable config offers none (preflight reports what is wrong with it).
func (w *Wizard) sshConfigHosts() []string {
	path := cmp.Or(w.opts.SSHConfigFile, inventory.DefaultSSHConfigFile)
	sc, err := inventory.LoadSSHConfig(path, w.log.Named("ssh"))
	if err != nil {
		return []string{}
	}
	return append([]string{}, sc.Hosts()...)
}

// acceptKey records key for hostport in drover's known_hosts, as the
// daemon records a first-seen key (inventory.KnownHosts: flock, re-read
// under the lock, one fsynced append).
func (w *Wizard) acceptKey(hostport string, key ssh.PublicKey) (bool, error) {
	kh, err := inventory.OpenKnownHosts(w.knownHosts, w.log)
	if err != nil {
		return false, err
	}
	return kh.Record(hostport, key)
}

// ReviewRequest is the setup to build a manifest from, or a manifest the
// operator edited in the review step.
type ReviewRequest struct {
	Setup    *Setup `json:"setup,omitempty"`
	Manifest string `json:"manifest,omitempty"`
}

func (w *Wizard) handleReview(rw http.ResponseWriter, r *http.Request) {
	var req ReviewRequest
	if !readJSON(rw, r, &req) {
		return
	}
	if req.Setup == nil && req.Manifest == "" {
		writeJSONError(rw, http.StatusBadRequest, "send a setup or a manifest")
		return
	}
	writeJSON(rw, http.StatusOK, w.review(r.Context(), req.Setup, req.Manifest))
}

// WriteRequest is the reviewed manifest and the hash of the file the
// review saw ("" when there was none).
type WriteRequest struct {
	Manifest string `json:"manifest"`
	BaseHash string `json:"baseHash"`
}

func (w *Wizard) handleWrite(rw http.ResponseWriter, r *http.Request) {
	var req WriteRequest
	if !readJSON(rw, r, &req) {
		return
	}
	out, ps, err := w.write([]byte(req.Manifest), req.BaseHash)
	switch {
	case errors.Is(err, ErrInvalid):
		writeJSON(rw, http.StatusUnprocessableEntity, map[string]any{"error": "the manifest is not valid: nothing was written", "problems": problemsJSON(ps)})
		return
	case errors.Is(err, ErrStale), errors.Is(err, ErrSymlink):
		writeJSONError(rw, http.StatusConflict, err.Error())
		return
	case err != nil:
		w.log.Error("write manifest", zap.Error(err))
		writeJSONError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	w.log.Info("manifest written by the setup wizard", zap.String("path", out.Path), zap.String("backup", out.Backup), zap.String("sha256", out.Hash))
	writeJSON(rw, http.StatusOK, out)
}

func readJSON(rw http.ResponseWriter, r *http.Request, into any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		writeJSONError(rw, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSONError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	rw.Write(append(b, '\n'))
}

func writeJSONError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, map[string]string{"error": msg})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
