package wizard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// testToken is what the tests' guard wants in X-Test-Token.
const testToken = "test-token-0123456789"

// tokenGuard is a stand-in for console.Guard in the package's own tests
// (guard_test.go uses the real one).
func tokenGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Token") != testToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fixture is a wizard over temp dirs: an artifacts folder with fake
// tarballs, a manifest path (absent at first) and a known_hosts path.
type fixture struct {
	w            *Wizard
	srv          *httptest.Server
	dir          string
	manifestPath string
	knownHosts   string
	artifacts    string
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{
		dir:          dir,
		manifestPath: filepath.Join(dir, "etc", "cluster.yaml"),
		knownHosts:   filepath.Join(dir, "state", "known_hosts"),
		artifacts:    filepath.Join(dir, "artifacts"),
	}
	for _, p := range []string{filepath.Dir(f.manifestPath), f.artifacts} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"zookeeper-3.8.0.tar.gz":     "zookeeper bytes",
		"node_exporter-1.8.2.tar.gz": "node exporter 1.8.2",
		"node_exporter-1.9.1.tar.gz": "node exporter 1.9.1",
		"README.tar.gz":              "no version",
		"unrelated.txt":              "ignored",
	} {
		if err := os.WriteFile(filepath.Join(f.artifacts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An empty ssh_config: the operator's own ~/.ssh/config stays out of tests.
	sshConfig := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(sshConfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		SSHConfigFile:  sshConfig,
		ManifestPath:   f.manifestPath,
		ArtifactsDir:   f.artifacts,
		KnownHostsFile: f.knownHosts,
		Log:            zaptest.NewLogger(t),
		Guard:          tokenGuard,
		ConnectTimeout: 5e9,
		NewRunner: func(manifests.SSH) (inventory.Runner, func(), error) {
			return unreachableRunner{}, func() {}, nil
		},
	}
	if mod != nil {
		mod(&opts)
	}
	f.w = newWizard(opts)
	f.srv = httptest.NewServer(f.w)
	t.Cleanup(f.srv.Close)
	return f
}

// unreachableRunner answers every probe with "unreachable", so a plan
// can be made without nodes.
type unreachableRunner struct{}

func (unreachableRunner) Run(context.Context, inventory.Target, string, io.Reader) (inventory.Result, error) {
	return inventory.Result{}, inventory.ErrUnreachable
}

func (unreachableRunner) DialTCP(context.Context, inventory.Target, string) (net.Conn, error) {
	return nil, inventory.ErrUnreachable
}

var _ inventory.Runner = unreachableRunner{}

// post sends v as JSON with the token and decodes the answer into out
// (when not nil); it returns the status code.
func (f *fixture) post(t *testing.T, path string, v, out any) int {
	t.Helper()
	return f.postWith(t, path, v, out, map[string]string{"X-Test-Token": testToken})
}

func (f *fixture) postWith(t *testing.T, path string, v, out any, headers map[string]string) int {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("POST %s: %d %s: %v", path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// threeNodeSetup is a valid setup over the fixture's artifacts.
func threeNodeSetup() Setup {
	return Setup{
		Cluster:       "lab",
		InstallRoot:   "/opt/drover",
		ProbeInterval: "10s",
		SSH:           SSHSetup{User: "root", Port: 22, IdentityFile: "/root/.ssh/id_ed25519"},
		Nodes: []NodeSetup{
			{Name: "m1", Address: "127.0.2.1", Roles: []string{"master"}},
			{Name: "m2", Address: "127.0.2.2", Roles: []string{"master"}},
			{Name: "a1", Address: "127.0.2.3", Roles: []string{"agent"}},
		},
		Components: []ComponentSetup{
			{Name: "zookeeper", Version: "3.8.0", Artifact: "zookeeper-3.8.0.tar.gz", Template: "zookeeper",
				Roles: []string{"master"}, Exec: "{{ .Dir }}/bin/zk-run", Health: HealthSetup{Kind: "tcp", Port: 2181}},
			{Name: "node-exporter", Version: "1.9.1", Artifact: "node_exporter-1.9.1.tar.gz", Template: "node-exporter",
				Exec:   "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100",
				Health: HealthSetup{Kind: "http", Port: 9100, Path: "/metrics"}},
		},
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func decode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
