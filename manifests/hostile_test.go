package manifests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileBase is a valid manifest with three nodes; %s is the file's
// template and %s the service's exec line (both YAML double-quoted).
const hostileBase = `
apiVersion: drover/v1
kind: Cluster
metadata: {name: test}
spec:
  nodes:
    - {name: n1, address: 10.0.0.1, roles: [a]}
    - {name: n2, address: 10.0.0.2, roles: [a]}
    - {name: n3, address: 10.0.0.3, roles: [a]}
  components:
    - name: app
      version: "1.0"
      artifact: {url: "https://example.com/app.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
%s
      service: {exec: "%s"}
`

func hostileManifest(exec string, templates ...string) []byte {
	var files strings.Builder
	for i, t := range templates {
		fmt.Fprintf(&files, "        - {path: conf/f%d, template: \"%s\"}\n", i, t)
	}
	if len(templates) == 0 {
		files.WriteString("        - {path: conf/f0, template: \"x\"}\n")
	}
	return fmt.Appendf(nil, hostileBase, files.String(), exec)
}

// loadWithin loads data, failing (instead of hanging the test binary)
// when it takes longer than limit.
func loadWithin(t *testing.T, limit time.Duration, path string, data []byte) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := LoadBytes(path, data)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("still loading after %v", limit)
		return nil
	}
}

// TestHostileTemplates: a template is a program, and one manifest's
// templates together get a bounded number of steps, bytes and seconds;
// over budget is a validation error naming the field and the node.
func TestHostileTemplates(t *testing.T) {
	repeat := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	// 2^40 calls: each template calls the next twice.
	var chain strings.Builder
	for i := range 40 {
		fmt.Fprintf(&chain, `{{define \"t%d\"}}{{template \"t%d\"}}{{template \"t%d\"}}{{end}}`, i, i+1, i+1)
	}
	chain.WriteString(`{{define \"t40\"}}{{end}}{{template \"t0\"}}`)
	cases := []struct {
		name      string
		manifest  []byte
		wantPath  string
		wantInMsg string
	}{
		{"nested ranges that write nothing", hostileManifest("/bin/true", "{{range 100000}}{{range 100000}}{{end}}{{end}}"),
			"spec.components[0].files[0].template", "node n1: templates over budget: more than 2000000 steps"},
		{"nested ranges in service.exec", hostileManifest("{{range 100000}}{{range 100000}}{{end}}{{end}}/bin/true"),
			"spec.components[0].service.exec", "node n1: templates over budget"},
		{"a range in the else of a range", hostileManifest("/bin/true", "{{range 0}}{{else}}{{range 100000}}{{range 100000}}{{end}}{{end}}{{end}}"),
			"spec.components[0].files[0].template", "templates over budget"},
		{"exponential template calls", hostileManifest("/bin/true", chain.String()),
			"spec.components[0].files[0].template", "templates over budget"},
		{"a string doubled in a variable", hostileManifest("/bin/true", `{{$x := \"xxxxxxxx\"}}{{range 60}}{{$x = printf \"%s%s\" $x $x}}{{end}}`),
			"spec.components[0].files[0].template", "templates over budget: produce more than 268435456 bytes"},
		{"wide printf never written", hostileManifest("/bin/true", `{{range 100000}}{{$x := printf \"%0999999d\" 1}}{{end}}`),
			"spec.components[0].files[0].template", "templates over budget: produce more than"},
		{"escapes that grow", hostileManifest("/bin/true", `{{$x := \"<<<<<<<<\"}}{{range 60}}{{$x = html $x $x}}{{end}}`),
			"spec.components[0].files[0].template", "templates over budget"},
		// 50 files just under 8 MiB each: no file over its own limit,
		// 400 MB in all.
		{"many files each under the file limit", hostileManifest("/bin/true", repeat(50, "{{range 1048000}}xxxxxxxx{{end}}")...),
			"spec.components[0].files[", "templates over budget"},
		// Passed before: Go's own depth limit stops plain recursion.
		{"recursion", hostileManifest("/bin/true", `{{define \"r\"}}{{template \"r\"}}{{end}}{{template \"r\"}}`),
			"spec.components[0].files[0].template", "exceeded maximum template depth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := loadWithin(t, 60*time.Second, "hostile.yaml", tc.manifest)
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			found := false
			for _, p := range invalid.Problems {
				if strings.HasPrefix(p.Path, tc.wantPath) && strings.Contains(p.Message, tc.wantInMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem at %s containing %q in:\n%v", tc.wantPath, tc.wantInMsg, err)
			}
			if n := len(invalid.Problems); n > 3 {
				t.Errorf("%d problems: the budget error should be reported once, not for every template:\n%v", n, err)
			}
			t.Logf("%v", time.Since(start))
		})
	}
}

// TestTemplateBudgetStopsOnCancel: the daemon cancels a load it no
// longer needs (it is stopping), and the load ends at once.
func TestTemplateBudgetStopsOnCancel(t *testing.T) {
	ctx, cancel := contextWithCancel()
	data := hostileManifest("/bin/true", "{{range 100000}}{{range 100000}}{{end}}{{end}}")
	done := make(chan error, 1)
	go func() {
		_, err := LoadBytesContext(ctx, "hostile.yaml", data)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("loaded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a cancelled load still runs after 2s")
	}
}

// TestOrdinaryTemplatesWithinBudget: the helpers the examples use still
// work through the budgeted builtins.
func TestOrdinaryTemplatesWithinBudget(t *testing.T) {
	data := hostileManifest("{{ .Dir }}/bin/run --id={{ printf \\\"%03d\\\" (add .Node.Index.a 1) }}",
		`{{range $i, $n := .Cluster.Nodes}}server.{{add $i 1}}={{$n.Address}}:2888\n{{end}}`,
		`{{ print .Node.Name }} {{ html \"<a>\" }} {{ js \"'\" }} {{ urlquery \"a b\" }} {{ println 1 }}`)
	l, err := LoadBytes("ok.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	comp := &l.Cluster.Spec.Components[0]
	files, err := l.Cluster.Render(&l.Cluster.Spec.Nodes[1], comp)
	if err != nil {
		t.Fatal(err)
	}
	want0 := "server.1=10.0.0.1:2888\nserver.2=10.0.0.2:2888\nserver.3=10.0.0.3:2888\n"
	if got := string(files[0].Content); got != want0 {
		t.Errorf("member list:\n%s", got)
	}
	if got, want := string(files[1].Content), "n2 &lt;a&gt; \\' a+b 1\n"; got != want {
		t.Errorf("helpers: %q, want %q", got, want)
	}
}

// TestNodeIndependent: only a template that cannot see the node is
// rendered once for all nodes.
func TestNodeIndependent(t *testing.T) {
	cases := map[string]bool{
		"{{range .Cluster.Nodes}}{{.Address}}\n{{end}}":                     true,
		"{{join \",\" (nodesWithRole \"a\")}}":                              true,
		"{{.Component.Dir}}/x {{.Dir}}":                                     true,
		"{{.Node.Name}}":                                                    false,
		"{{$.Node.Address}}":                                                false,
		"{{with .Node}}{{.Name}}{{end}}":                                    false,
		"{{range .Cluster.Nodes}}{{if eq .Name $.Node.Name}}{{end}}{{end}}": false,
		"{{template \"x\" .}}{{define \"x\"}}{{.Cluster.Name}}{{end}}":      false, // hands the whole context on
		"{{define \"x\"}}{{.Node.Name}}{{end}}{{template \"x\" .}}":         false,
		"{{printf \"%v\" .}}":                                               false,
		"{{$c := .}}{{$c.Cluster.Name}}":                                    false,
		"{{$}}":                                                             false,
	}
	for text, want := range cases {
		tmpl, err := ParseTemplate("t", text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if got := nodeIndependent(tmpl); got != want {
			t.Errorf("nodeIndependent(%s) = %v, want %v", text, got, want)
		}
	}
}

// TestSpecialFilesRefused: a file the manifest names that is not a
// regular file is an immediate error, never a read that blocks.
func TestSpecialFilesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := func(inv string) []byte {
		return fmt.Appendf(nil, "apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n  inventoryFile: %s\n  components: []\n", inv)
	}
	cases := map[string]string{
		fifo:        "is a FIFO",
		sub:         "is a directory",
		"/dev/zero": "is a device",
	}
	for inv, want := range cases {
		t.Run(filepath.Base(inv), func(t *testing.T) {
			err := loadWithin(t, 10*time.Second, filepath.Join(dir, "cluster.yaml"), manifest(inv))
			if err == nil || !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "spec.inventoryFile") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want spec.inventoryFile ... %s", err, want)
			}
		})
	}
	for path, want := range cases {
		done := make(chan error, 1)
		go func() { _, err := ReadRegular(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
				t.Errorf("ReadRegular(%s) = %v", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadRegular(%s) blocks", path)
		}
		if err := CheckRegular(path); !errors.Is(err, ErrNotRegular) {
			t.Errorf("CheckRegular(%s) = %v", path, err)
		}
	}
	// The watched manifest itself replaced by a FIFO: the watcher's read
	// fails at once instead of blocking the watcher.
	if c := read(fifo); !errors.Is(c.Err, ErrNotRegular) {
		t.Errorf("watcher read of a FIFO: %v", c.Err)
	}
}

// TestHostileStrings keeps the classes that held before: shell
// metacharacters, traversal and YAML bombs in string fields are each
// rejected with the field's path.
func TestHostileStrings(t *testing.T) {
	meta := "$(touch /tmp/pwned);`id`|&>x'\\\"\n"
	cases := []struct {
		name, manifest, wantPath string
	}{
		{"metacharacters in metadata.name", strings.Replace(string(hostileManifest("/bin/true")), "name: test", "name: \""+meta+"\"", 1), "metadata.name"},
		{"metacharacters in a node name", strings.Replace(string(hostileManifest("/bin/true")), "name: n1,", "name: \""+meta+"\",", 1), "spec.nodes[0].name"},
		{"metacharacters in a node address", strings.Replace(string(hostileManifest("/bin/true")), "address: 10.0.0.1", "address: \""+meta+"\"", 1), "spec.nodes[0].address"},
		{"metacharacters in a role", strings.Replace(string(hostileManifest("/bin/true")), "roles: [a]}\n    - {name: n2", "roles: [\""+meta+"\"]}\n    - {name: n2", 1), "spec.nodes[0].roles[0]"},
		{"metacharacters in a component name", strings.Replace(string(hostileManifest("/bin/true")), "name: app", "name: \""+meta+"\"", 1), "spec.components[0].name"},
		{"metacharacters in a version", strings.Replace(string(hostileManifest("/bin/true")), "version: \"1.0\"", "version: \""+meta+"\"", 1), "spec.components[0].version"},
		{"a newline in service.exec", string(hostileManifest("/bin/true\\nExecStartPre=/bin/sh")), "spec.components[0].service.exec"},
		{"traversal in a file path", strings.Replace(string(hostileManifest("/bin/true")), "path: conf/f0", "path: ../../../etc/cron.d/x", 1), "spec.components[0].files[0].path"},
		{"traversal in a version", strings.Replace(string(hostileManifest("/bin/true")), "version: \"1.0\"", "version: ../../x", 1), "spec.components[0].version"},
		{"a relative install root", strings.Replace(string(hostileManifest("/bin/true")), "  nodes:\n", "  installRoot: ../opt\n  nodes:\n", 1), "spec.installRoot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadWithin(t, 10*time.Second, "hostile.yaml", []byte(tc.manifest))
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			for _, p := range invalid.Problems {
				if strings.HasPrefix(p.Path, tc.wantPath) {
					return
				}
			}
			t.Errorf("no problem at %s:\n%v", tc.wantPath, err)
		})
	}
	for name, doc := range map[string]string{"billion laughs": laughs(), "few big aliases": bigAliases()} {
		if err := loadWithin(t, 10*time.Second, "bomb.yaml", []byte(doc)); err == nil {
			t.Errorf("%s loaded", name)
		}
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// TestValidateRunsLaterChecks: what the unit writer and the probe refuse
// later, validate refuses now, with the field's path.
func TestValidateRunsLaterChecks(t *testing.T) {
	base := string(hostileManifest("/bin/true"))
	cases := []struct {
		name, manifest, wantPath, wantMsg string
	}{
		{"an unbalanced quote in service.exec", strings.Replace(base, `exec: "/bin/true"`, `exec: "/bin/app --name='x"`, 1),
			"spec.components[0].service.exec", "unbalanced quote"},
		{"a quote left open by a template", strings.Replace(base, `exec: "/bin/true"`, `exec: "/bin/app {{ printf \"%c\" 34 }}"`, 1),
			"spec.components[0].service.exec", "unbalanced quote"},
		{"a trailing backslash in service.exec", strings.Replace(base, `exec: "/bin/true"`, `exec: "/bin/app \\\\"`, 1),
			"spec.components[0].service.exec", "backslash"},
		{"a backslash in a file path", strings.Replace(base, "path: conf/f0", `path: 'conf\f0'`, 1),
			"spec.components[0].files[0].path", "backslash"},
		{"a backslash in an absolute file path", strings.Replace(base, "path: conf/f0", `path: '/etc/a\b'`, 1),
			"spec.components[0].files[0].path", "backslash"},
		{"a NUL in a health argument", strings.Replace(base, `      service:`, `      health: {exec: {command: [/bin/check, "a\0b"]}}`+"\n      service:", 1),
			"spec.components[0].health.exec.command[1]", "NUL"},
		{"a backslash in installRoot", strings.Replace(base, "  nodes:\n", "  installRoot: '/opt/dro\\ver'\n  nodes:\n", 1),
			"spec.installRoot", "backslash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadWithin(t, 10*time.Second, "later.yaml", []byte(tc.manifest))
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			for _, p := range invalid.Problems {
				if p.Path == tc.wantPath && strings.Contains(p.Message, tc.wantMsg) {
					return
				}
			}
			t.Errorf("no problem at %s with %q:\n%v", tc.wantPath, tc.wantMsg, err)
		})
	}
}

// TestMissingArtifactsNamesSpecialFiles: validate warns about an
// artifact that is a FIFO or a directory, which an install refuses.
func TestMissingArtifactsNamesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "app.tar.gz"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(string(hostileManifest("/bin/true")), `artifact: {url: "https://example.com/app.tar.gz"`, `artifact: {path: app.tar.gz`, 1)
	l, err := LoadBytes(filepath.Join(dir, "cluster.yaml"), []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	ps := MissingArtifacts(l)
	if len(ps) != 1 || ps[0].Path != "spec.components[0].artifact.path" || !strings.Contains(ps[0].Message, "it is a FIFO") {
		t.Errorf("problems: %v", ps)
	}
}
