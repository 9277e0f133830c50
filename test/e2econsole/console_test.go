package e2econsole

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/drover-project/drover/test/browser"
)

// TestConsole follows an operator through the console: a fresh cluster
// converging, a manifest edit rolling out live, a node cut off, the node
// pages, and a phone-sized screen. The page is loaded once for the first
// three steps; a recorder left in it proves it never reloaded, and keeps
// every state it showed between the test's looks.
func TestConsole(t *testing.T) {
	s := setup(t)
	artifacts := browser.Dir(t)
	manifest := filepath.Join(s.work, "cluster.yaml")
	s.writeManifest(t, manifest, s.old.Version)
	d, consoleURL := s.startDaemon(t, manifest, artifacts)
	ctx := browser.New(t)
	p := &page{t: t, ctx: ctx}

	// The printed URL carries the token; the page keeps it for the tab and
	// takes it out of the address bar.
	u, err := url.Parse(consoleURL)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("console URL %q has no token", consoleURL)
	}
	p.do(chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.ID("matrix")))
	if loc := evalJS[string](p, `location.href`); strings.Contains(loc, "token") {
		t.Errorf("the token stays in the address bar: %s", loc)
	}
	if kept := evalJS[string](p, `sessionStorage.getItem("drover.token")`); kept != u.Query().Get("token") {
		t.Errorf("sessionStorage holds %q, want the printed token", kept)
	}
	evalJS[bool](p, recorder)

	// 1. A fresh cluster: installs on every node, then all converged.
	p.waitFor(5*time.Minute, "all three nodes converged on 1.8.2", fmt.Sprintf(
		`count("converged") === "3" && text("generation") === "1" && cellsAll(%q) && live()`, "1.8.2 → 1.8.2"))
	p.shot("01-cluster-converged")
	p.mustText("rollout-idle", "Nothing rolling out")
	p.mustText("plan", "Nothing to change")

	// 2. An edit of the manifest: the rollout shows, one node at a time,
	// and ends converged, with no reload.
	s.writeManifest(t, manifest, s.new.Version)
	p.waitFor(2*time.Minute, "the rollout in progress", `text("generation") === "2" && document.getElementById("rollout-progress") !== null`)
	p.shot("02-rollout-progressing")
	p.waitFor(5*time.Minute, "all three nodes converged on 1.9.1", fmt.Sprintf(
		`count("converged") === "3" && cellsAll(%q) && document.getElementById("rollout-progress") === null`, "1.9.1 → 1.9.1"))
	p.shot("03-upgraded-converged")
	rec := evalJS[recorded](p, `window.__drover || null`)
	if !rec.Installed {
		t.Fatal("the page was reloaded: the recorder is gone")
	}
	if !rec.Progress || !slices.Contains(rec.Versions, "1.9.1 → 1.8.2") || !slices.Contains(rec.States, "Updating") {
		t.Errorf("the page never showed the rollout under way: %+v", rec)
	}
	if !slices.ContainsFunc(rec.Batch, func(s string) bool { return strings.Contains(s, "upgrade node-exporter 1.8.2 → 1.9.1") }) {
		t.Errorf("the page never showed the batch: %q", rec.Batch)
	}

	// 3. A node cut off turns unreachable, still with no reload.
	victim := s.c.Nodes[2].Name
	if err := s.c.Cut(victim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.c.Restore(victim); err != nil {
			t.Errorf("restore %s: %v", victim, err)
		}
	})
	p.waitFor(2*time.Minute, victim+" unreachable", fmt.Sprintf(
		`row(%q) === "Unreachable" && count("unreachable") === "1" && count("converged") === "2"`, victim))
	p.shot("04-node-unreachable")
	if !evalJS[bool](p, `window.__drover !== undefined`) {
		t.Error("the page was reloaded before the node turned unreachable")
	}

	// 4. The node pages: facts, receipt, actions with their durations; the
	// cut node's probe error.
	first := s.c.Nodes[0].Name
	base := "http://" + d.Addr()
	p.do(chromedp.Navigate(base+"/nodes/"+first), chromedp.WaitVisible(chromedp.ID("facts")))
	p.mustText("fact-os", "debian 12")
	p.mustText("facts", "Roles node", "zone=z1")
	if arch := p.text("fact-arch"); arch == "" {
		t.Error("no arch on the node page")
	}
	p.mustText("component-node-exporter", "1.9.1", "Synced", "Healthy", "active (running)", "sha256", s.new.SHA256[:12], "previous 1.8.2")
	p.mustText("actions", "install node-exporter 1.8.2", "upgrade node-exporter 1.9.1", "success")
	if n := evalJS[int](p, `document.querySelectorAll("#actions tr.action").length`); n < 2 {
		t.Errorf("%d actions on the node page, want the install and the upgrade", n)
	}
	p.shot("05-node-page")
	p.do(chromedp.Navigate(base+"/nodes/"+victim), chromedp.WaitVisible(chromedp.ID("facts")))
	cut := s.c.Nodes[2].Address + ":22"
	p.waitFor(time.Minute, "the cut node's probe error and last known facts", fmt.Sprintf(
		`text("probe-error").includes(%q) && text("fact-os").includes("debian")`, cut))
	p.mustText("node-plan", "Not known until the node answers a probe")
	if w := evalJS[int](p, `document.documentElement.scrollWidth`); w > browser.Width {
		t.Errorf("the cut node's page is %dpx wide in a %dpx window", w, browser.Width)
	}
	p.shot("06-node-page-unreachable")

	// 5. A phone: nothing wider than the screen but the matrix, which
	// scrolls inside its box.
	p.do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("matrix")))
	if w := evalJS[int](p, `document.documentElement.scrollWidth`); w > 391 {
		t.Errorf("the page is %dpx wide on a 390px screen", w)
	}
	if ov := evalJS[string](p, `getComputedStyle(document.querySelector("#matrix .scroll")).overflowX`); ov != "auto" {
		t.Errorf("the matrix box does not scroll: overflow-x %q", ov)
	}
	p.shot("07-narrow-screen")
	p.do(chromedp.Navigate(base+"/nodes/"+victim), chromedp.WaitVisible(chromedp.ID("facts")))
	if w := evalJS[int](p, `document.documentElement.scrollWidth`); w > 391 {
		t.Errorf("the node page is %dpx wide on a 390px screen", w)
	}
	p.shot("08-narrow-node-page")
}

// recorder runs in the page from its first load: it notes every node
// state, cell text and batch line the page shows, so what happened
// between the test's looks is known, and its presence proves no reload.
const recorder = `(() => {
  const rec = window.__drover = {installed: true, states: [], versions: [], batch: [], progress: false};
  const note = (list, v) => { if (!list.includes(v)) list.push(v); };
  setInterval(() => {
    document.querySelectorAll("tr[data-state]").forEach((tr) => note(rec.states, tr.dataset.state));
    document.querySelectorAll("td.cell .ver").forEach((v) => note(rec.versions, v.textContent.trim()));
    document.querySelectorAll("ul.batch li").forEach((li) => note(rec.batch, li.textContent.trim()));
    if (document.getElementById("rollout-progress")) rec.progress = true;
  }, 100);
  return true;
})()`

type recorded struct {
	Installed bool     `json:"installed"`
	States    []string `json:"states"`
	Versions  []string `json:"versions"`
	Batch     []string `json:"batch"`
	Progress  bool     `json:"progress"`
}

// helpers are defined in every page the test looks at (CDP's evaluate
// is not bound by the page's Content-Security-Policy).
const helpers = `
const text = (id) => { const e = document.getElementById(id); return e ? e.innerText.replace(/\s+/g, " ").trim() : ""; };
const count = (state) => { const e = document.querySelector("#count-" + state + " .n"); return e ? e.textContent.trim() : ""; };
const row = (node) => { const e = document.getElementById("node-" + node); return e ? e.dataset.state : ""; };
const cellsAll = (want) => { const c = [...document.querySelectorAll("td.cell .ver")]; return c.length > 0 && c.every((v) => v.textContent.trim() === want); };
const live = () => document.getElementById("live").className.includes("ok");
`

// page drives the browser for one test; a failed wait saves a screenshot
// and the page's text.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("browser: %v", err)
	}
}

func evalJS[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.fail("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls cond (a JavaScript expression, with helpers) until true.
func (p *page) waitFor(within time.Duration, what, cond string) {
	p.t.Helper()
	start := time.Now()
	js := "(() => {" + helpers + "return !!(" + cond + ");})()"
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			p.t.Logf("page shows %s after %v", what, since(start))
			return
		}
		if time.Since(start) > within {
			p.fail("timed out after %v waiting for the page to show %s (last error %v)", within, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// text is the text of the element with id, spaces squeezed.
func (p *page) text(id string) string {
	p.t.Helper()
	return evalJS[string](p, "(() => {"+helpers+"return text("+fmt.Sprintf("%q", id)+");})()")
}

func (p *page) mustText(id string, wants ...string) {
	p.t.Helper()
	got := p.text(id)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			p.t.Errorf("#%s lacks %q: %q", id, w, got)
		}
	}
}

func (p *page) shot(name string) { p.t.Helper(); browser.Screenshot(p.t, p.ctx, name) }

func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
		path := filepath.Join(browser.Dir(p.t), "failure.png")
		if werr := writeFile(path, png); werr == nil {
			p.t.Logf("screenshot of the failure: %s", path)
		}
	}
	if body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		p.t.Logf("page text:\n%s", body)
	}
	p.t.Fatalf(format, args...)
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
