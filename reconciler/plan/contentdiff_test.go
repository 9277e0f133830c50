package plan

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

func TestIsDowngrade(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"3.8.4", "3.8.0", true},
		{"1.10.0", "1.9.1", true},
		{"1.9.1", "1.10.0", false},
		{"v2.0.0", "1.0.0", true},
		{"1.2", "1.1.9", true},
		{"1.0.0", "1.0.0-rc1", true},
		{"1.0.0-rc1", "1.0.0", false},
		{"2024-06", "2024-05", false}, // not semantic versions: no claim
		{"3.8.0", "latest", false},
	} {
		if got := IsDowngrade(tc.from, tc.to); got != tc.want {
			t.Errorf("%s -> %s: downgrade %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

// nodeEdit is what the golden diff tests find on a node in place of a
// rendered file that drifted: the rendering with its first line replaced.
func nodeEdit(rendered []byte) []byte {
	_, rest, ok := bytes.Cut(rendered, []byte("\n"))
	if !ok {
		return []byte("edited on the node\n")
	}
	return append([]byte("# edited on the node\n"), rest...)
}

// TestGoldenDiffs: the plan of every fixture with its content diffs, in
// text and JSON (testdata/diff/NAME.golden), where a node's copy of each
// drifted file is nodeEdit of the rendering.
func TestGoldenDiffs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.plantest")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".plantest")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			manifest, rest, _ := strings.Cut(string(data), sepObserved)
			observedText, _, _ := strings.Cut(rest, sepPlan)
			l, err := manifests.LoadBytes(file, []byte(manifest))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Compile(l)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := parseGoldenObserved(d, []byte(observedText))
			if err != nil {
				t.Fatal(err)
			}
			plan := Diff(d, obs)
			current := CurrentFiles{}
			for node, paths := range ContentRequest(d, plan, obs, "") {
				current[node] = map[string][]byte{}
				for _, p := range paths {
					if f := wantedFile(d, node, p); f != nil && f.Sensitive {
						t.Errorf("%s: the sensitive %s is read from the node", node, p)
					}
					current[node][p] = nodeEdit(wantedContent(d, node, p))
				}
			}
			AttachDiffs(d, &plan, obs, current, "")
			var b bytes.Buffer
			if err := WritePlanText(&b, plan); err != nil {
				t.Fatal(err)
			}
			b.WriteString("---- json\n")
			j, err := json.MarshalIndent(plan.Nodes, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b.Write(j)
			b.WriteString("\n")
			if strings.Contains(b.String(), "s3cret") {
				t.Error("a sensitive file's content is in the plan")
			}
			golden := filepath.Join("testdata", "diff", name+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", golden, b.String())
			}
		})
	}
}

// wantedContent is the rendered file or unit at path for node.
func wantedContent(d *Desired, node, path string) []byte {
	for _, c := range d.Node(node).Components {
		for _, f := range c.Files {
			if f.Path == path {
				return f.Content
			}
		}
		if filepath.Join(probes.DefaultUnitDir, UnitName(c.Name)) == path {
			return c.Unit
		}
	}
	return nil
}

func wantedFile(d *Desired, node, path string) *manifests.RenderedFile {
	for _, c := range d.Node(node).Components {
		for i := range c.Files {
			if c.Files[i].Path == path {
				return &c.Files[i]
			}
		}
	}
	return nil
}
