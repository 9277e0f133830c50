package manifests

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// laughs is the billion laughs: ten levels of nine aliases each.
func laughs() string {
	var b strings.Builder
	b.WriteString("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	prev := "a"
	for i := 0; i < 9; i++ {
		name := string(rune('b' + i))
		b.WriteString(name + ": &" + name + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	return b.String()
}

// bigAliases aliases a 3 MB scalar 900 times: few aliases, so the YAML
// library's ratio check lets it through, but 2.7 GB once expanded.
func bigAliases() string {
	return "metadata: {name: &s \"" + strings.Repeat("x", 3<<20) + "\"}\nspec:\n  nodes: [" +
		strings.Repeat("{name: *s},", 899) + "{name: *s}]\n"
}

func TestParseRefusesHostileInput(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want string // substring of the error
		is   error
	}{
		{"billion laughs", laughs(), "excessive aliasing", nil},
		{"few big aliases", bigAliases(), "", ErrTooExpanded},
		{"deep sequences", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "", ErrTooDeep},
		{"deep mappings", strings.Repeat("{a: ", 5000) + "1" + strings.Repeat("}", 5000), "", ErrTooDeep},
		{"deeper than the YAML library allows", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "exceeded max depth", nil},
		{"binary junk", "\x00\x01\x02\xff\xfe\x89PNG\r\n", "", ErrNotText},
		{"control characters", "apiVersion: drover/v1\x00\x01\n", "control characters are not allowed", nil},
		{"10 MB", "# " + strings.Repeat("x", 10<<20) + "\n", "more than the 4194304 allowed", nil},
		{"two documents", "apiVersion: drover/v1\n---\nkind: Cluster\n", "", ErrTooManyDocuments},
		{"unknown field", "apiVersion: drover/v1\nspec: {nodez: []}\n", "\n  spec.nodez: unknown field (did you mean nodes?)", nil},
		{"unknown fields everywhere", "spec: {ssh: {Port: 22}, components: [{name: a, verison: 1}]}\nextra: 1\n",
			"3 problem(s):\n  spec.ssh.Port: unknown field (did you mean port?)\n" +
				"  spec.components[0].verison: unknown field (did you mean version?)\n  extra: unknown field", nil},
		{"duplicate key", "apiVersion: drover/v1\napiVersion: drover/v2\n", `key "apiVersion" already set`, nil},
		{"wrong kinds", "spec: {nodes: {name: x}, paused: maybe, ssh: {port: \"22\"}, components: [{name: [a]}]}\n",
			"4 problem(s):\n  spec.paused: must be true or false, not text\n  spec.ssh.port: must be a whole number, not text\n" +
				"  spec.nodes: must be a list, not a mapping\n  spec.components[0].name: must be text, not a list", nil},
		{"not a mapping", "- a\n- b\n", "(document): must be a mapping, not a list", nil},
		{"a merge key overridden", "spec:\n  components:\n    - &base {name: a}\n    - <<: *base\n      name: b\n",
			`key "name" already set in map`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("parsed: %+v", c.Metadata)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %q", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestParseAcceptsOrdinaryYAML(t *testing.T) {
	cases := map[string]string{
		"trailing document marker": "apiVersion: drover/v1\n---\n",
		"explicit start":           "---\napiVersion: drover/v1\n",
		"comment only":             "# nothing yet\n",
		// yaml.v2's strict mode refuses a merged key given again (see
		// "a merge key overridden" above), so merges can only add keys.
		"anchors and merge keys": `
spec:
  components:
    - &base {version: "1", state: present}
    - {<<: *base, name: a}
    - {<<: *base, name: b}
`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err != nil {
				t.Fatal(err)
			}
		})
	}
	c, err := Parse([]byte(cases["anchors and merge keys"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Spec.Components[2]; got.Name != "b" || got.Version != "1" || got.State != "present" {
		t.Fatalf("merge key: got %+v", got)
	}
}

// TestParseReportsScalarsThatChange covers YAML 1.1 reading unquoted
// text as numbers or booleans: each becomes a problem, not a silent change.
func TestParseReportsScalarsThatChange(t *testing.T) {
	doc := `
apiVersion: drover/v1
kind: Cluster
metadata: {name: t, labels: {public: yes, rack: 7}}
spec:
  nodes: [{name: n1, address: 127.0.0.1}]
  probeInterval: 30
  components:
    - name: c
      version: 1.10
      files: [{path: a, mode: 0644, template: x}, {path: b, mode: "0644", template: x}]
      service: {exec: x, environment: {DEBUG: on, LEVEL: 2}}
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	got := problemStrings(c.Validate())
	want := []string{
		`metadata.labels.public: true is a YAML boolean (as are yes, no, on and off), not text; quote it`,
		`spec.components[0].version: 1.1 is a YAML number, not text, and may not be what was written (1.10 reads as 1.1); quote it`,
		`spec.components[0].files[0].mode: must be a quoted string such as "0644": YAML reads an unquoted 0644 as the number 420`,
		`spec.components[0].service.environment.DEBUG: true is a YAML boolean (as are yes, no, on and off), not text; quote it`,
		`spec.probeInterval: "30" is not a duration`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// the integer label and variable read as written and are fine
	if c.Metadata.Labels["rack"] != "7" || c.Spec.Components[0].Service.Environment["LEVEL"] != "2" {
		t.Fatalf("labels %v, environment %v", c.Metadata.Labels, c.Spec.Components[0].Service.Environment)
	}
}

// TestParseExecList: service.exec and service.reload read as one line or
// a list of arguments, and the scalars beside a list keep their type
// guidance (an unquoted number in environment reads as text).
func TestParseExecList(t *testing.T) {
	doc := `
apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes: [{name: n1, address: 127.0.0.1}]
  components:
    - name: c
      version: "1"
      files: [{path: a, template: x, onChange: reload}]
      service:
        exec: ["{{ .Dir }}/bin/c", --name, "{{ .Node.Name }}", 7]
        reload: [/bin/kill, -HUP, $MAINPID]
        environment: {LEVEL: 2}
    - name: d
      version: "1"
      files: [{path: a, template: x}]
      service: {exec: "/bin/d --x"}
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec.Components[0].Service
	if s.Exec != "" || strings.Join(s.ExecArgs, "|") != "{{ .Dir }}/bin/c|--name|{{ .Node.Name }}|7" {
		t.Fatalf("exec %q, args %q", s.Exec, s.ExecArgs)
	}
	if strings.Join(s.ReloadArgs, "|") != "/bin/kill|-HUP|$MAINPID" || s.Environment["LEVEL"] != "2" {
		t.Fatalf("reload %q, environment %v", s.ReloadArgs, s.Environment)
	}
	if d := c.Spec.Components[1].Service; d.Exec != "/bin/d --x" || d.ExecArgs != nil {
		t.Fatalf("one-line exec: %q %q", d.Exec, d.ExecArgs)
	}
	c.SetDefaults()
	if ps := c.Validate(); len(ps) != 0 {
		t.Fatalf("problems: %v", problemStrings(ps))
	}
	_, err = Parse([]byte(strings.Replace(doc, `exec: ["{{ .Dir }}/bin/c"`, `exec: [{a: b}`, 1)))
	if err == nil || !strings.Contains(err.Error(), "spec.components[0].service.exec[0]: must be text, not a mapping") {
		t.Fatalf("a mapping in the list: %v", err)
	}
}
