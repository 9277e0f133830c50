package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes through Parse, SetDefaults and Validate:
// none may panic or hang, every problem has a path and a message, and a
// manifest Validate passes renders for every node (Validate executes each
// template, so Render must not find anything new).
//
//	go test -fuzz FuzzParse -fuzztime 30s ./manifests
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/*/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.yaml")
	for _, path := range append(seeds, more...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(baseManifest))
	f.Add([]byte(laughs()[:300]))
	f.Add([]byte("a: &a [x]\nb: &b [*a, *a]\nc: [*b, *b]\n"))
	f.Add([]byte("spec: {rollout: {maxUnavailable: 10%}, probeInterval: 30}\n"))
	f.Add([]byte("[[[[{a: {b: [1, {c: d}]}}]]]]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		c.SetDefaults()
		// Templates run within the manifest's budget (budget.go), so even
		// `{{ range 1000000000 }}` ends, as an error; but spending a
		// budget takes a second or so, which would slow the fuzzer to a
		// crawl. TestHostileTemplates covers loops; leave them out here.
		if bytes.Contains(data, []byte("range")) {
			return
		}
		ps := c.Validate()
		for _, p := range ps {
			if p.Path == "" || p.Message == "" {
				t.Fatalf("problem without path or message: %+v", p)
			}
		}
		if ps.HasErrors() {
			return
		}
		for i := range c.Spec.Nodes {
			if _, err := c.RenderNode(&c.Spec.Nodes[i]); err != nil {
				t.Fatalf("valid manifest does not render: %v", err)
			}
		}
	})
}
