package e2ewizard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/drover-project/drover/test/browser"
)

// page drives the browser tab; every step fails the test with its name
// and a screenshot of what the page showed.
type page struct {
	t   *testing.T
	ctx context.Context
}

// stepTimeout bounds one step: preflight and the plan connect to every
// node, which takes seconds on a loaded machine.
const stepTimeout = 2 * time.Minute

func (p *page) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.runTimeout(step, stepTimeout, actions...)
}

func (p *page) runTimeout(step string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		browser.Screenshot(p.t, p.ctx, "failed-"+step)
		p.t.Fatalf("%s: %v", step, err)
	}
}

// text is the visible text of the element sel selects.
func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		browser.Screenshot(p.t, p.ctx, "failed-text")
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// truth evaluates a JavaScript expression that yields a boolean.
func (p *page) truth(expr string) bool {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// The CSS selector actions the test uses: chromedp's plain strings are a
// DOM search that also matches text, CSS is what the test means.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), v)
}

func (p *page) shot(name string) {
	p.t.Helper()
	browser.Screenshot(p.t, p.ctx, name)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
