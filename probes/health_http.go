package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
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
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return HealthResult{Checked: true, Message: err.Error()}
	}
	// Read at most maxCheckBody: enough for a health document, and the
	// server sees a clean close.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	resp.Body.Close()
	if err != nil {
		return HealthResult{Checked: true, Message: fmt.Sprintf("GET %s: reading the body: %v", url, err)}
	}
	if msg := judgeHTTP(c, resp.StatusCode, body); msg != "" {
		return HealthResult{Checked: true, Message: fmt.Sprintf("GET %s: %s", url, msg)}
	}
	return HealthResult{Checked: true, OK: true, Message: fmt.Sprintf("GET %s: status %d", url, resp.StatusCode)}
}

// maxCheckBody bounds the body an http check reads.
const maxCheckBody = 64 << 10

// judgeHTTP is the pure half of an http check: "" when the answer
// passes, else why not.
func judgeHTTP(c *manifests.HTTPCheck, status int, body []byte) string {
	if want := c.Statuses(); !slices.Contains(want, status) {
		return fmt.Sprintf("status %d, want %s", status, joinInts(want))
	}
	if c.BodyRegexp != "" {
		re, err := regexp.Compile(c.BodyRegexp)
		if err != nil {
			return "bodyRegexp: " + err.Error()
		}
		if !re.Match(body) {
			return fmt.Sprintf("status %d, body does not match %q: %s", status, c.BodyRegexp, snippet(body))
		}
	}
	if len(c.BodyJSON) == 0 {
		return ""
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Sprintf("status %d, body is not a JSON object: %s", status, snippet(body))
	}
	for _, k := range slices.Sorted(maps.Keys(c.BodyJSON)) {
		raw, ok := doc[k]
		if !ok {
			return fmt.Sprintf("status %d, body has no field %q: %s", status, k, snippet(body))
		}
		if got := jsonText(raw); got != c.BodyJSON[k] {
			return fmt.Sprintf("status %d, body field %s is %s, want %q", status, k, raw, c.BodyJSON[k])
		}
	}
	return ""
}

// jsonText is a JSON value as text for comparison: a string's content,
// anything else as written (true, 3, null, {...}).
func jsonText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " or ")
}

// snippet is the start of a body, for a message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}
