package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "s3cret-token-0123456789"

// guarded serves a handler behind g.Mutations that counts the requests
// it let through.
func guarded(t *testing.T) (*httptest.Server, *int) {
	t.Helper()
	g, err := NewGuard(testToken)
	if err != nil {
		t.Fatal(err)
	}
	var reached int
	srv := httptest.NewServer(g.Mutations(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.Write([]byte("done"))
	})))
	t.Cleanup(srv.Close)
	return srv, &reached
}

func TestGuard(t *testing.T) {
	srv, reached := guarded(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"read needs no token", "GET", nil, 200},
		{"head needs no token", "HEAD", nil, 200},
		{"post without token", "POST", map[string]string{"Content-Type": "application/json"}, 401},
		{"post wrong bearer", "POST", map[string]string{"Authorization": "Bearer nope-nope-nope-nope"}, 401},
		{"post token as prefix", "POST", map[string]string{"Authorization": "Bearer " + testToken[:10]}, 401},
		{"post token plus suffix", "POST", map[string]string{"Authorization": "Bearer " + testToken + "x"}, 401},
		{"post basic auth scheme", "POST", map[string]string{"Authorization": "Basic " + testToken}, 401},
		{"post basic auth beside the token header", "POST", map[string]string{"Authorization": "Basic dTpw", HeaderToken: testToken}, 200},
		{"post basic auth beside a wrong token header", "POST", map[string]string{"Authorization": "Basic dTpw", HeaderToken: "nope-nope-nope-nope"}, 401},
		{"post wrong header token", "POST", map[string]string{HeaderToken: "nope-nope-nope-nope"}, 401},
		{"post right bearer", "POST", map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}, 200},
		{"post right bearer lowercase scheme", "POST", map[string]string{"Authorization": "bearer " + testToken}, 200},
		{"put right header token", "PUT", map[string]string{HeaderToken: testToken}, 200},
		{"delete without token", "DELETE", nil, 401},
		{"same origin browser", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}, 200},
		{"cross-site browser with token", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 403},
		// Another port on the same host is "same-site" yet another origin.
		{"same-site other port", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}, 403},
		{"old browser foreign origin", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Origin": "http://evil.example"}, 403},
		{"old browser own origin", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Origin": "http://" + host}, 200},
		{"form post with token", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"multipart with token", "POST", map[string]string{"Authorization": "Bearer " + testToken,
			"Content-Type": "multipart/form-data; boundary=x"}, 415},
		{"text/plain with token", "POST", map[string]string{HeaderToken: testToken,
			"Content-Type": "text/plain;charset=UTF-8"}, 415},
		{"cross-site form without token", "POST", map[string]string{"Sec-Fetch-Site": "cross-site",
			"Content-Type": "application/x-www-form-urlencoded"}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := *reached
			req, err := http.NewRequest(c.method, srv.URL+"/x", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
			}
			passed := *reached - before
			if (c.want == 200) != (passed == 1) {
				t.Errorf("handler reached %d times, status %d", passed, resp.StatusCode)
			}
			if c.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
			if c.want >= 400 {
				var body struct{ Error string }
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
					t.Errorf("refusal body not {\"error\": ...}: %v %+v", err, body)
				}
			}
		})
	}
}

// TestRequireGuardsReads: Require, unlike Mutations, guards GET too.
func TestRequireGuardsReads(t *testing.T) {
	g, err := NewGuard(testToken)
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("GET without token through Require: %d", rec.Code)
	}
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set(HeaderToken, testToken)
	if err := g.Check(req); err != nil {
		t.Errorf("Check with the token: %v", err)
	}
	req.Header.Set(HeaderToken, "wrong-wrong-wrong-wrong")
	if err := g.Check(req); !errors.Is(err, ErrBadToken) {
		t.Errorf("Check with a wrong token: %v", err)
	}
}

func TestNewGuardRefusesShortToken(t *testing.T) {
	if _, err := NewGuard("short"); err == nil {
		t.Error("a 5-character token was accepted")
	}
}

func TestGenerateToken(t *testing.T) {
	a, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken()
	if a == b || len(a) != 43 || strings.ContainsAny(a, "+/=") {
		t.Errorf("tokens %q %q: want distinct 43-character URL-safe strings", a, b)
	}
	if _, err := NewGuard(a); err != nil {
		t.Error(err)
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte("  "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := ReadTokenFile(good); err != nil || tok != testToken {
		t.Errorf("ReadTokenFile: %q %v", tok, err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte(testToken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(open); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable token file: %v", err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(short); err == nil {
		t.Error("a 3-character token file was accepted")
	}
	if _, err := ReadTokenFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
