package probes

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// httpCheck passes when GET http://host:port/path, sent from the node,
// answers the expected status. Redirects are not followed: a 302 is an
// answer, and a check may expect it.
func httpCheck(ctx context.Context, r inventory.Runner, t inventory.Target, h *manifests.Health) HealthResult {
	c := h.HTTP
	ctx, cancel := context.WithTimeout(ctx, checkTimeout(h))
	defer cancel()
	p := c.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	want := c.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	url := "http://" + net.JoinHostPort(checkHost(c.Host, t), strconv.Itoa(c.Port)) + p
	tr := &http.Transport{
		// No Proxy: the request leaves from the node, not from here.
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return r.DialTCP(ctx, t, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return HealthResult{Checked: true, Message: "http: " + err.Error()}
	}
	req.Header.Set("User-Agent", "drover-health")
	resp, err := client.Do(req)
	if err != nil {
		return HealthResult{Checked: true, Message: err.Error()}
	}
	// Drain a little so the server sees a clean close; bodies do not matter.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != want {
		return HealthResult{Checked: true, Message: fmt.Sprintf("GET %s: status %d, want %d", url, resp.StatusCode, want)}
	}
	return HealthResult{Checked: true, OK: true, Message: fmt.Sprintf("GET %s: status %d", url, resp.StatusCode)}
}
