package metrics

import (
	_ "embed"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
)

// AlertRules is the Prometheus rule file shipped with drover (alerts.yaml):
// recording rules and alerts, ready for rule_files in prometheus.yml.
//
//go:embed alerts.yaml
var AlertRules []byte

// forLine matches the `for:` line of an alert, which alerts.yaml keeps as a
// plain duration on a line of its own.
var forLine = regexp.MustCompile(`(?m)^(\s+for:\s*)(\S+)\s*$`)

// RenderRules returns AlertRules with every alert's `for` duration replaced
// by forOverride, so an end-to-end test can see alerts fire in seconds
// rather than minutes. forOverride 0 returns the rules unchanged.
//
// It rewrites the text rather than re-encoding the YAML so that the comments
// and layout operators read stay as shipped.
func RenderRules(forOverride time.Duration) ([]byte, error) {
	if forOverride < 0 {
		return nil, fmt.Errorf("render rules: negative for override %s", forOverride)
	}
	if forOverride == 0 {
		return append([]byte(nil), AlertRules...), nil
	}
	// Prometheus durations have no fractions: "1.5s" would not load.
	if forOverride%time.Millisecond != 0 {
		return nil, fmt.Errorf("render rules: for override %s is not a whole number of milliseconds", forOverride)
	}
	d := model.Duration(forOverride).String()
	out := forLine.ReplaceAll(AlertRules, []byte("${1}"+d))
	return out, nil
}
