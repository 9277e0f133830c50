// Package browser starts Debian's headless Chromium for browser tests and
// saves screenshots of what it shows as test artifacts.
//
//	ctx := browser.New(t)                          // fresh profile; closed when t ends
//	chromedp.Run(ctx, chromedp.Navigate(url), ...) // drive it with github.com/chromedp/chromedp
//	browser.Screenshot(t, ctx, "01-converged")     // <artifacts>/<TestName>/01-converged.png
//
// Artifacts go to $DROVER_TEST_ARTIFACTS when set, else to ./artifacts of
// the test's package (go test runs in the package directory). Uncaught
// JavaScript exceptions of the page fail the test when it ends, and the
// page's console errors are logged, so a broken script cannot pass as a
// page that merely has not updated yet.
//
// A missing Chromium fails the test with the command that installs it:
// a browser test that skips would pass on a machine that checks nothing.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
)

// EnvArtifacts names the directory screenshots go to, overriding ./artifacts.
const EnvArtifacts = "DROVER_TEST_ARTIFACTS"

// Width and Height are the window's size: a laptop screen.
const (
	Width  = 1280
	Height = 900
)

// Options are how tests (and the scale bench) run Chromium at execPath:
// headless, a fresh profile, nothing in the background.
func Options(execPath string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: the sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Background tabs would throttle the timers the page's live
		// updates use.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(Width, Height),
		// No UserDataDir: chromedp makes a fresh one and removes it.
	}
}

// ExecPath finds Chromium, or fails t with how to install it.
func ExecPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found in PATH: browser tests need it (Debian: apt-get install -y chromium, or test/deps.sh chromium)")
	return ""
}

// New starts a headless Chromium with a fresh profile and returns a context
// for chromedp.Run on its first tab. The browser is closed, and its
// processes and profile removed, when t ends.
func New(t testing.TB) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), Options(ExecPath(t))...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))

	// Start the browser now, so a broken install fails here and not in
	// the first action.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	// The page's console, read until the browser closes: exceptions fail
	// the test, errors are logged (both when t ends, from t's goroutine).
	var exceptions, errs []string
	messages := chromedp.Console(ctx)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for m, err := range messages {
			if err != nil {
				return
			}
			line := fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1)
			switch {
			case m.IsException():
				exceptions = append(exceptions, line)
			case m.Type == chromedp.ConsoleError:
				errs = append(errs, line)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-read
		for _, e := range errs {
			t.Logf("page console error: %s", e)
		}
		for _, e := range exceptions {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
	return ctx
}

// Dir returns the artifacts directory of t, created: $DROVER_TEST_ARTIFACTS
// or ./artifacts, then t's name.
func Dir(t testing.TB) string {
	t.Helper()
	root := os.Getenv(EnvArtifacts)
	if root == "" {
		root = "artifacts"
	}
	dir := filepath.Join(root, safeName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// Screenshot saves a PNG of the whole page (not only the window) as
// <Dir(t)>/<name>.png and returns its path. A failure fails t.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(Dir(t), safeName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}
