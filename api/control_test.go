package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/reconciler"
)

// fakeControl records what the endpoints asked of it.
type fakeControl struct {
	suspended bool
	storeErr  error
	retried   reconciler.Retried
	retryErr  error
	nodes     []string // the manifest's
	calls     []string
	at        time.Time
}

func (f *fakeControl) SetSuspended(s bool) error {
	f.calls = append(f.calls, fmt.Sprintf("suspend=%v", s))
	f.suspended = s
	return f.storeErr
}

func (f *fakeControl) Suspended() bool { return f.suspended }

func (f *fakeControl) Retry() (reconciler.Retried, error) {
	f.calls = append(f.calls, "retry")
	return f.retried, f.retryErr
}

func (f *fakeControl) ReconcileNow(nodes []string) ([]string, time.Time, error) {
	f.calls = append(f.calls, "reconcile "+strings.Join(nodes, ","))
	if len(nodes) == 0 {
		nodes = f.nodes
	}
	for _, n := range nodes {
		if !containsName(f.nodes, n) {
			return nil, f.at, fmt.Errorf("%w: %q", reconciler.ErrUnknownNode, n)
		}
	}
	return nodes, f.at, nil
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const controlToken = "control-token-0123456789"

func controlServer(t *testing.T, f *fakeControl) *http.ServeMux {
	t.Helper()
	g, err := console.NewGuard(controlToken)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	RegisterControl(mux, f, g.Require)
	return mux
}

type controlCall struct {
	method, path, body string
	headers            map[string]string
}

func (c controlCall) do(mux http.Handler) *httptest.ResponseRecorder {
	var body *strings.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(c.method, c.path, body)
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

var withToken = map[string]string{"Authorization": "Bearer " + controlToken}

// TestControlRefusedWithoutToken: every control endpoint refuses a
// request without the token, with a wrong one, cross-site or as a form,
// and the controller is never asked.
func TestControlRefusedWithoutToken(t *testing.T) {
	for _, path := range []string{PathSuspend, PathResume, PathRetry, PathReconcile} {
		for _, tc := range []struct {
			name    string
			headers map[string]string
			code    int
		}{
			{"no token", nil, http.StatusUnauthorized},
			{"wrong token", map[string]string{"Authorization": "Bearer wrong-token-0123456789"}, http.StatusUnauthorized},
			{"wrong header token", map[string]string{console.HeaderToken: "wrong-token-0123456789"}, http.StatusUnauthorized},
			{"cross-site", map[string]string{"Authorization": "Bearer " + controlToken, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{"form body", map[string]string{"Authorization": "Bearer " + controlToken, "Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				f := &fakeControl{nodes: []string{"a"}}
				rec := controlCall{method: "POST", path: path, headers: tc.headers}.do(controlServer(t, f))
				if rec.Code != tc.code {
					t.Errorf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
				}
				var e ErrorResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("body %q is not {\"error\": ...}", rec.Body)
				}
				if len(f.calls) != 0 {
					t.Errorf("the controller was asked: %v", f.calls)
				}
			})
		}
	}
}

// TestControlEndpoints: what each endpoint asks of the controller and
// answers, with the token.
func TestControlEndpoints(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		f     fakeControl
		call  controlCall
		code  int
		calls string
		want  ControlResponse // compared when code < 300
		error string          // a substring of the error otherwise
	}{
		{name: "suspend", call: controlCall{method: "POST", path: PathSuspend}, code: 200, calls: "suspend=true",
			want: ControlResponse{Suspended: true, Message: "suspended: no action starts (a running one ends), probing goes on"}},
		{name: "suspend again", f: fakeControl{suspended: true}, call: controlCall{method: "POST", path: PathSuspend}, code: 200, calls: "suspend=true",
			want: ControlResponse{Suspended: true, Message: "already suspended: no action starts, probing goes on"}},
		{name: "resume", f: fakeControl{suspended: true}, call: controlCall{method: "POST", path: PathResume}, code: 200, calls: "suspend=false",
			want: ControlResponse{Suspended: false, Message: "resumed: every node is looked at now"}},
		{name: "suspend the store refuses", f: fakeControl{storeErr: errors.New("disk full")}, call: controlCall{method: "POST", path: PathSuspend},
			code: 500, calls: "suspend=true", error: "suspended: no action starts (a running one ends), probing goes on, but the state store did not keep it (a restart would forget it): disk full"},
		{name: "retry a halt", f: fakeControl{retried: reconciler.Retried{Halt: "upgrade app 1.0 -> 2.0 on n1 failed: boom", Nodes: []string{"n1"}}},
			call: controlCall{method: "POST", path: PathRetry}, code: 200, calls: "retry",
			want: ControlResponse{Message: "halt lifted: upgrade app 1.0 -> 2.0 on n1 failed: boom", Halt: "upgrade app 1.0 -> 2.0 on n1 failed: boom", Nodes: []string{"n1"}}},
		{name: "retry while suspended", f: fakeControl{suspended: true, retried: reconciler.Retried{Nodes: []string{"n2"}}},
			call: controlCall{method: "POST", path: PathRetry}, code: 200, calls: "retry",
			want: ControlResponse{Suspended: true, Nodes: []string{"n2"}, Message: "backoff ended on 1 node(s); the daemon is still suspended: nothing starts before drover resume"}},
		{name: "retry nothing", f: fakeControl{retryErr: reconciler.ErrNothingToRetry}, call: controlCall{method: "POST", path: PathRetry}, code: 409, calls: "retry",
			error: "nothing to retry"},
		{name: "retry no manifest", f: fakeControl{retryErr: reconciler.ErrNoManifest}, call: controlCall{method: "POST", path: PathRetry}, code: 409, calls: "retry",
			error: "no manifest"},
		{name: "reconcile every node", f: fakeControl{nodes: []string{"a", "b"}}, call: controlCall{method: "POST", path: PathReconcile}, code: 202, calls: "reconcile ",
			want: ControlResponse{Message: "2 node(s) queued for a probe now", Nodes: []string{"a", "b"}, QueuedAt: at}},
		{name: "reconcile a node", f: fakeControl{nodes: []string{"a", "b"}}, call: controlCall{method: "POST", path: PathReconcile, body: `{"nodes":["b"]}`,
			headers: map[string]string{"Content-Type": "application/json"}}, code: 202, calls: "reconcile b",
			want: ControlResponse{Message: "1 node(s) queued for a probe now", Nodes: []string{"b"}, QueuedAt: at}},
		{name: "reconcile an unknown node", f: fakeControl{nodes: []string{"a"}}, call: controlCall{method: "POST", path: PathReconcile, body: `{"nodes":["zz"]}`},
			code: 404, calls: "reconcile zz", error: `no such node in the manifest in force: "zz"`},
		{name: "reconcile a misspelt field", f: fakeControl{nodes: []string{"a"}}, call: controlCall{method: "POST", path: PathReconcile, body: `{"node":["a"]}`},
			code: 400, error: `unknown field "node"`},
		{name: "GET is not a control", call: controlCall{method: "GET", path: PathSuspend}, code: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.at = at
			call := tc.call
			if call.headers == nil {
				call.headers = map[string]string{}
			}
			for k, v := range withToken {
				call.headers[k] = v
			}
			rec := call.do(controlServer(t, &f))
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if got := strings.Join(f.calls, ";"); got != tc.calls {
				t.Errorf("controller calls %q, want %q", got, tc.calls)
			}
			switch {
			case tc.code == 405:
			case tc.code < 300:
				var got ControlResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(tc.want)
				if string(gotJSON) != string(wantJSON) {
					t.Errorf("response\n%s\nwant\n%s", gotJSON, wantJSON)
				}
			default:
				var e ErrorResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.error) {
					t.Errorf("error %q, want it to contain %q", rec.Body, tc.error)
				}
			}
		})
	}
}
