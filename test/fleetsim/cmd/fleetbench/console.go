package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/drover-project/drover/test/browser"
)

// consoleLoad opens the console's cluster page in a headless Chromium
// runs times, each in a browser just started (a cold cache, as an
// operator's first visit), and returns the median time from navigation
// to the node table shown: the page's load event (the HTML, its script
// and stylesheet) and #matrix visible. Starting the browser is not timed.
// With no Chromium installed it returns 0 and says so.
func (d *daemon) consoleLoad(ctx context.Context, runs int) (time.Duration, error) {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return 0, nil
	}
	var times []time.Duration
	for range runs {
		t, err := loadOnce(ctx, path, d.base+"/")
		if err != nil {
			return 0, fmt.Errorf("console in chromium: %w", err)
		}
		times = append(times, t)
	}
	return median(times), nil
}

func loadOnce(ctx context.Context, chromium, url string) (time.Duration, error) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, browser.Options(chromium)...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		return 0, err
	}
	tctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelT()
	start := time.Now()
	if err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("matrix"))); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
