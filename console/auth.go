// Package console serves the operator's web console of `drover daemon`:
// the cluster page, the node pages, their live updates, and the guard
// that protects every endpoint which changes something.
//
// # Guard: the token and cross-site protection (auth.go)
//
// Reads need no token (like /api/v1/status, the daemon listens on
// loopback by default). Every request that changes something must pass
// a Guard:
//
//	g, err := console.NewGuard(token)        // token: console.GenerateToken() or console.ReadTokenFile(path)
//	mux.Handle("POST /api/v1/wizard/write", g.Require(writeHandler))
//	mux.Handle("/api/v1/wizard/", g.Mutations(wizardMux)) // GET/HEAD/OPTIONS pass, the rest is guarded
//	if err := g.Check(r); err != nil { ... }  // the same test, for a handler that wants its own response
//
// A request passes when all of these hold:
//
//   - it carries the token, as "Authorization: Bearer <token>" or
//     "X-Drover-Token: <token>" (never in the URL or a form field: a URL
//     ends up in logs and history). It is compared in constant time.
//   - it is not cross-site: Sec-Fetch-Site, or failing that Origin against
//     Host, must say same origin (net/http's CrossOriginProtection, which
//     also lets through clients such as curl that send neither).
//   - its body is not one of the content types a cross-site HTML form or a
//     CORS "simple" request can send (application/x-www-form-urlencoded,
//     multipart/form-data, text/plain): send JSON (application/json).
//
// Refusals: 401 without a token or with a wrong one (with
// WWW-Authenticate: Bearer), 403 cross-site, 415 form content type. The
// body is JSON {"error": "..."} so a page can show it.
//
// In the browser the console keeps the token in sessionStorage (see
// assets/common.js: droverToken() and droverFetch() add the header), so
// the wizard's page should use the same helpers.
package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strings"
)

// HeaderToken is the header that carries the token besides Authorization.
const HeaderToken = "X-Drover-Token"

// minTokenLen keeps a guessable token out: 16 characters of base64 are
// 96 bits.
const minTokenLen = 16

// Why a request was refused; test with errors.Is.
var (
	ErrNoToken   = errors.New("this request changes something and needs the console token (Authorization: Bearer <token>)")
	ErrBadToken  = errors.New("wrong console token")
	ErrCrossSite = errors.New("cross-site request refused")
	ErrFormBody  = errors.New("form and text/plain bodies are refused: send application/json")
)

// Guard admits requests that carry the daemon's token and come from the
// console's own origin. It is safe for concurrent use.
type Guard struct {
	// sum is the token's sha256: comparing digests of equal length keeps
	// the comparison constant-time whatever the length of the guess.
	sum    [sha256.Size]byte
	origin *http.CrossOriginProtection
}

// NewGuard returns a guard for token, which must be at least 16
// characters.
func NewGuard(token string) (*Guard, error) {
	if len(token) < minTokenLen {
		return nil, fmt.Errorf("console token: %d characters, want at least %d", len(token), minTokenLen)
	}
	return &Guard{sum: sha256.Sum256([]byte(token)), origin: http.NewCrossOriginProtection()}, nil
}

// GenerateToken returns a fresh random token (256 bits, URL-safe base64).
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate console token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ReadTokenFile reads a token from path, trimmed of surrounding space. A
// file that group or others may read is refused, as ssh refuses such a
// private key: anyone who can read the token can change the cluster.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s: mode %04o lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minTokenLen {
		return "", fmt.Errorf("token file %s: %d characters, want at least %d", path, len(tok), minTokenLen)
	}
	return tok, nil
}

// Check returns nil when r may change something, else one of ErrNoToken,
// ErrBadToken, ErrCrossSite or ErrFormBody (possibly wrapped).
func (g *Guard) Check(r *http.Request) error {
	// Cross-site first: a forged request learns nothing about the token.
	if err := g.origin.Check(r); err != nil {
		return fmt.Errorf("%w: %v", ErrCrossSite, err)
	}
	if isFormBody(r.Header.Get("Content-Type")) {
		return ErrFormBody
	}
	tok, ok := requestToken(r)
	if !ok {
		return ErrNoToken
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], g.sum[:]) != 1 {
		return ErrBadToken
	}
	return nil
}

// Require guards every request to next, whatever its method.
func (g *Guard) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(r); err != nil {
			refuse(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Mutations guards the requests to next that can change something
// (anything but GET, HEAD and OPTIONS) and lets reads through.
func (g *Guard) Mutations(next http.Handler) http.Handler {
	guarded := g.Require(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
		default:
			guarded.ServeHTTP(w, r)
		}
	})
}

// requestToken is the Bearer token, else the X-Drover-Token header. An
// Authorization of another scheme (the web config's basic auth, which a
// client such as drover suspend sends beside X-Drover-Token) carries no
// token.
func requestToken(r *http.Request) (string, bool) {
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, tok, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(tok)
			return tok, tok != ""
		}
	}
	if v := strings.TrimSpace(r.Header.Get(HeaderToken)); v != "" {
		return v, true
	}
	return "", false
}

// isFormBody reports the content types a cross-site form or CORS simple
// request may send without a preflight.
func isFormBody(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return true // unparsable: refuse rather than guess
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

func refuse(w http.ResponseWriter, err error) {
	code := http.StatusForbidden
	switch {
	case errors.Is(err, ErrNoToken), errors.Is(err, ErrBadToken):
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="drover"`)
	case errors.Is(err, ErrFormBody):
		code = http.StatusUnsupportedMediaType
	}
	writeError(w, code, err.Error())
}

// writeError answers {"error": msg} with code.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
