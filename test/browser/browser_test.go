package browser

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// recordingTB catches the errors and cleanups New registers, so a test can
// check that a page's exception fails the test that opened it.
type recordingTB struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func page(body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}))
}

func TestNavigateAndScreenshot(t *testing.T) {
	t.Setenv(EnvArtifacts, t.TempDir())
	srv := page(`<!doctype html><title>hello</title><h1 id="h">Hello, drover</h1>`)
	defer srv.Close()
	ctx := New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("h"))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("h")))
	if err != nil || text != "Hello, drover" {
		t.Fatalf("text %q, %v", text, err)
	}
	path := Screenshot(t, ctx, "hello page")
	if !strings.HasSuffix(path, "TestNavigateAndScreenshot/hello_page.png") {
		t.Errorf("screenshot path %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n")) || len(b) < 1000 {
		t.Errorf("not a PNG of a page: %d bytes", len(b))
	}
}

// TestPageExceptionFails: a script that throws fails the test when it ends.
func TestPageExceptionFails(t *testing.T) {
	srv := page(`<!doctype html><p id="p">x</p><script>throw new Error("boom from the page")</script>`)
	defer srv.Close()
	rec := &recordingTB{TB: t}
	ctx := New(rec)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("p"))); err != nil {
		t.Fatal(err)
	}
	// The exception event may trail the load a little.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`new Promise(r => setTimeout(() => r(1), 200))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	rec.runCleanups()
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "boom from the page") {
		t.Errorf("errors reported: %q", rec.errors)
	}
}
