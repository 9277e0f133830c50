package plan

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/drover-project/drover/"

// pureImports are the packages the planner may import: none reads a
// disk, a network, the environment or the clock. The schema packages
// (manifests, probes, inventory) do I/O too, so for them the test checks
// each function the planner calls instead (ioFuncs).
var pureImports = []string{
	"bufio", "bytes", "cmp", "context", "crypto/sha256", "encoding/hex", "encoding/json", "errors", "fmt",
	"io", "maps", "math", "path", "reflect", "regexp", "slices", "sort", "strconv", "strings",
	"text/template", "time", "unicode", "unicode/utf8",
	"github.com/aymanbagabas/go-udiff", "golang.org/x/mod/semver",
	module + "internal/safetext", module + "manifests", module + "probes", module + "inventory",
}

// impure are the standard packages whose use makes a function do I/O.
var impure = map[string]bool{
	"os": true, "os/exec": true, "net": true, "net/http": true, "syscall": true, "io/fs": true,
	"path/filepath": true, "github.com/fsnotify/fsnotify": true, "golang.org/x/crypto/ssh": true,
}

// clock are the functions of time that read the clock or wait on it.
var clock = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"}

// TestPlanningDoesNoIO: the planner is a function of (desired, observed)
// → plan, so its tables and golden files say all it does. Its own files
// import only pureImports, read no clock, and call no function of the
// schema packages that does I/O (takes a Runner, or uses an impure
// package, itself or through a function of its package).
func TestPlanningDoesNoIO(t *testing.T) {
	io := map[string]bool{} // "pkgpath.Func"
	for _, pkg := range []string{"manifests", "probes", "inventory"} {
		for f := range ioFuncs(t, filepath.Join("..", "..", pkg)) {
			io[module+pkg+"."+f] = true
		}
	}
	if !io[module+"probes.Probe"] || !io[module+"manifests.Load"] {
		t.Fatalf("the I/O finder misses probes.Probe or manifests.Load: %v", io)
	}
	files := parseDir(t, ".")
	if len(files) == 0 {
		t.Fatal("no planner files found")
	}
	for name, f := range files {
		imports := fileImports(f)
		for local, path := range imports {
			if !slices.Contains(pureImports, path) {
				t.Errorf("%s imports %s: planning does no I/O; do it at the edge and pass the result in", name, path)
			}
			_ = local
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			path, ok := imports[x.Name]
			switch {
			case !ok:
			case path == "time" && slices.Contains(clock, sel.Sel.Name):
				t.Errorf("%s calls time.%s: the planner takes the time it plans for as input", name, sel.Sel.Name)
			case io[path+"."+sel.Sel.Name]:
				t.Errorf("%s calls %s.%s, which does I/O", name, x.Name, sel.Sel.Name)
			}
			return true
		})
	}
}

// ioFuncs are the package-level functions of the package in dir that do
// I/O: they take an inventory Runner, use an impure
// package, or call such a function of their own package.
func ioFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	calls := map[string][]string{}
	io := map[string]bool{}
	for _, f := range parseDir(t, dir) {
		imports := fileImports(f)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil {
				continue
			}
			name := fd.Name.Name
			for _, p := range fd.Type.Params.List {
				if strings.HasSuffix(exprString(p.Type), "Runner") {
					io[name] = true
				}
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && impure[imports[id.Name]] {
						io[name] = true
					}
				case *ast.CallExpr:
					if id, ok := x.Fun.(*ast.Ident); ok {
						calls[name] = append(calls[name], id.Name)
					}
				}
				return true
			})
		}
	}
	for changed := true; changed; {
		changed = false
		for f, callees := range calls {
			for _, c := range callees {
				if io[c] && !io[f] {
					io[f], changed = true, true
				}
			}
		}
	}
	return io
}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = f
	}
	return out
}

// fileImports maps each import's local name to its path.
func fileImports(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		local := p[strings.LastIndex(p, "/")+1:]
		if p == "github.com/aymanbagabas/go-udiff" {
			local = "udiff"
		}
		if im.Name != nil {
			local = im.Name.Name
		}
		m[local] = p
	}
	return m
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.Ident:
		return x.Name
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	}
	return ""
}
