package wizard_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/console/wizard"
)

// TestEveryPostNeedsTheConsoleToken drives the wizard behind the
// console's real guard: without the token, with a wrong one, or
// cross-site, every POST is refused before it does anything.
func TestEveryPostNeedsTheConsoleToken(t *testing.T) {
	const token = "0123456789abcdef-wizard-test"
	g, err := console.NewGuard(token)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cluster.yaml")
	h := wizard.New(wizard.Options{ManifestPath: manifest, KnownHostsFile: filepath.Join(dir, "known_hosts"), Guard: g.Require})
	srv := httptest.NewServer(h)
	defer srv.Close()

	posts := []string{"/api/v1/wizard/preflight", "/api/v1/wizard/hostkeys/accept", "/api/v1/wizard/review", "/api/v1/wizard/write"}
	for _, path := range posts {
		for _, tc := range []struct {
			name    string
			headers map[string]string
			want    int
		}{
			{"no token", nil, http.StatusUnauthorized},
			{"wrong token", map[string]string{"Authorization": "Bearer wrong-token-wrong-token"}, http.StatusUnauthorized},
			{"cross-site", map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{"manifest":"x","baseHash":""}`))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.name, path, resp.StatusCode, tc.want)
			}
		}
	}
	// With the token the request reaches the wizard (which refuses the
	// bogus manifest on its merits).
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/wizard/write", strings.NewReader(`{"manifest":"x","baseHash":""}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(console.HeaderToken, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("write with the token: %d, want 422", resp.StatusCode)
	}

	// Reads need no token; a GET of a POST endpoint is not a way around.
	for path, want := range map[string]int{
		"/setup":                   http.StatusOK,
		"/setup/wizard.js":         http.StatusOK,
		"/setup/wizard.css":        http.StatusOK,
		"/api/v1/wizard/artifacts": http.StatusOK,
		"/api/v1/wizard/write":     http.StatusMethodNotAllowed,
		"/setup/":                  http.StatusNotFound,
		"/setup/../wizard.go":      http.StatusNotFound,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestNoGuardRefusesEverything: a wizard mounted without a guard must not
// run unguarded.
func TestNoGuardRefusesEverything(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(wizard.New(wizard.Options{ManifestPath: filepath.Join(dir, "c.yaml")}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/wizard/review", "application/json", strings.NewReader(`{"manifest":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unguarded review: %d, want 403", resp.StatusCode)
	}
}
