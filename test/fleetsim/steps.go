package fleetsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// A script drover runs in a session of its own (inventory.Pool.Run) is one
// action step, one query, or a chain of steps (reconciler's stepchain.go).
// The simulator does not run shell: it knows each step by the label
// drover puts first ("# drover step: NAME"), reads the values the step's
// script assigns (paths, versions, sha256s) and applies the step's effect
// to the model, printing "changed" when it changed something, as the
// real script does.

// stepResult is what one step printed and its exit status.
type stepResult struct {
	stdout, stderr []byte
	code           int
}

// runScript runs one Run script against the model with stdin and returns
// the session's stdout, stderr and exit status.
func (n *Node) runScript(script string, stdin []byte) stepResult {
	if isProbe(script) {
		req, err := ParseProbe(script)
		if err != nil {
			return stepResult{stderr: []byte(err.Error() + "\n"), code: 2}
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.probes++
		n.fleet.counted(n, true)
		return stepResult{stdout: n.model.Answer(req)}
	}
	if m, ok := chainMarker(script); ok {
		return n.runChain(script, m, stdin)
	}
	return n.runStep(script, stdin)
}

// chainMarker is the marker of a chain script ("dc_m=<marker>").
func chainMarker(script string) (string, bool) {
	if !strings.HasPrefix(script, "# drover steps: ") {
		return "", false
	}
	i := strings.Index(script, "\ndc_m=")
	if i < 0 {
		return "", false
	}
	m, _, _ := strings.Cut(script[i+len("\ndc_m="):], "\n")
	return m, m != ""
}

// runChain runs the steps of a chain one after another, each with its
// own part of stdin, and reports each as the chain's shell code does.
func (n *Node) runChain(script, marker string, stdin []byte) stepResult {
	var res stepResult
	rest := script
	open := "# " + marker + " step "
	closing := "\n# " + marker + " done\n"
	for i := 0; ; i++ {
		j := strings.Index(rest, open)
		if j < 0 {
			return res
		}
		rest = rest[j+len(open):]
		sizeText, body, _ := strings.Cut(rest, "\n")
		size, err := strconv.Atoi(sizeText)
		k := strings.Index(body, closing)
		if err != nil || k < 0 || size > len(stdin) {
			res.stderr = append(res.stderr, "fleetsim: bad step chain\n"...)
			res.code = 2
			return res
		}
		step := strings.TrimPrefix(body[:k], "(\n")
		rest = body[k+len(closing):]
		in := stdin[:size]
		stdin = stdin[size:]
		r := n.runStep(step, in)
		res.stdout = append(res.stdout, r.stdout...)
		res.stdout = fmt.Appendf(res.stdout, "\n%s %d 0.00 0.00\n", marker, r.code)
		res.stderr = append(res.stderr, r.stderr...)
		res.stderr = fmt.Appendf(res.stderr, "\n%s %d\n", marker, i)
		if r.code != 0 {
			res.code = r.code
			return res
		}
	}
}

// stepName is the label a step or query script starts with (in a chain,
// after the line that cuts its stdin: "head -c N | (").
func stepName(script string) string {
	for _, label := range []string{"# drover step: ", "# drover query: "} {
		i := strings.Index(script, label)
		if i == 0 || i > 0 && script[i-1] == '\n' {
			name, _, _ := strings.Cut(script[i+len(label):], "\n")
			return name
		}
	}
	return ""
}

// assigned is the value a script assigns to name on a line of its own
// ("name=VALUE"), unquoted, or "".
func assigned(script, name string) string {
	for line := range strings.SplitSeq(script, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			if w, err := shellWords(v); err == nil && len(w) == 1 {
				return w[0]
			}
		}
	}
	return ""
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// componentOf is the component name in a path like <root>/<dir>/<name>...
func componentOf(p, dir string) string {
	_, rest, ok := strings.Cut(p, "/"+dir+"/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return strings.TrimSuffix(name, ".json")
}

// runStep applies one step (or query) to the model.
func (n *Node) runStep(script string, stdin []byte) stepResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.steps++
	n.fleet.counted(n, false)
	m := n.model
	var out bytes.Buffer
	changed := func() { out.WriteString("changed\n") }
	fail := func(code int, format string, args ...any) stepResult {
		return stepResult{stdout: out.Bytes(), stderr: fmt.Appendf(nil, format+"\n", args...), code: code}
	}
	switch name := stepName(script); name {
	case "inspect package":
		c := assigned(script, "c") // <root>/packages/<name>/<version>/.complete
		dir := path.Dir(c)
		if m.Packages[path.Base(path.Dir(dir))][path.Base(dir)] {
			out.WriteString("package-complete\n")
		}
	case "ensure dirs", "prune", "prune cache", "restore files", "restore unit":
		// Nothing the model keeps.
	case "upload artifact", "download artifact":
		// The cache is not modelled: the artifact is taken and dropped.
		changed()
	case "write files", "keep unit", "unpack":
		pkgDst := assigned(script, "dst")
		for line := range strings.SplitSeq(script, "\n") {
			if !strings.HasPrefix(line, "put ") {
				continue
			}
			w, err := shellWords(line)
			if err != nil || len(w) != 8 {
				return fail(2, "fleetsim: bad put line %q", line)
			}
			p, mode, sum := w[3], w[5], w[7]
			size, err := strconv.Atoi(w[6])
			if err != nil || size > len(stdin) {
				return fail(65, "short or corrupt content received for %s", p)
			}
			content := stdin[:size]
			stdin = stdin[size:]
			if sha256Hex(content) != sum {
				return fail(65, "short or corrupt content received for %s", p)
			}
			bits, err := strconv.ParseUint(mode, 8, 32)
			if err != nil {
				return fail(2, "fleetsim: bad mode %q", mode)
			}
			if name == "unpack" {
				// Written into the temp dir; lands in the version dir.
				tmp := assigned(script, "tmp")
				p = pkgDst + strings.TrimPrefix(p, tmp)
			}
			f := File{Mode: uint32(bits), SHA256: sum}
			if m.Files[p] != f {
				m.Files[p] = f
				changed()
			}
		}
		if name == "unpack" {
			c, v := path.Base(path.Dir(pkgDst)), path.Base(pkgDst)
			if !m.Packages[c][v] {
				if m.Packages[c] == nil {
					m.Packages[c] = map[string]bool{}
				}
				m.Packages[c][v] = true
				changed()
			}
		}
		for _, p := range deletedPaths(script) {
			if _, ok := m.Files[p]; ok {
				delete(m.Files, p)
				changed()
			}
		}
	case "write unit":
		uf, want, u := assigned(script, "uf"), assigned(script, "want"), assigned(script, "u")
		if sha256Hex(stdin) != want {
			return fail(65, "short or corrupt unit received for %s", uf)
		}
		f := File{Mode: 0o644, SHA256: want}
		if m.Files[uf] != f {
			m.Files[uf] = f
			changed()
		}
		if _, ok := m.Units[u]; !ok {
			m.Units[u] = Unit{Active: "inactive", Sub: "dead"}
		}
	case "restart unit":
		u := assigned(script, "u")
		m.Units[u] = Unit{Active: "active", Sub: "running", Enabled: true}
		delete(m.HealthFail, strings.TrimSuffix(strings.TrimPrefix(u, "drover-"), ".service"))
		changed()
	case "stop unit":
		u := assigned(script, "u")
		if st, ok := m.Units[u]; ok && (st.Active != "inactive" || st.Enabled) {
			m.Units[u] = Unit{Active: "inactive", Sub: "dead"}
			changed()
		}
	case "delete unit":
		uf, u := assigned(script, "uf"), assigned(script, "u")
		if _, ok := m.Files[uf]; ok {
			delete(m.Files, uf)
			delete(m.Units, u)
			changed()
		}
	case "switch active":
		link, target := assigned(script, "link"), assigned(script, "target")
		c, v := path.Base(link), path.Base(target)
		if !m.Packages[c][v] {
			return fail(69, "version %s of %s is not complete on the node", v, c)
		}
		if m.Active[c] != v {
			m.Active[c] = v
			changed()
		}
	case "write receipt":
		c := componentOf(assigned(script, "r"), "receipts")
		if !bytes.Equal(m.Receipts[c], stdin) {
			m.Receipts[c] = bytes.Clone(stdin)
			changed()
		}
	case "delete receipt":
		for _, p := range forList(script) {
			if c := componentOf(p, "receipts"); c != "" && !strings.HasPrefix(c, ".") {
				if _, ok := m.Receipts[c]; ok {
					delete(m.Receipts, c)
					changed()
				}
			}
		}
	case "delete package":
		for _, p := range forList(script) {
			if c := componentOf(p, "packages"); c != "" && path.Base(path.Dir(p)) == "packages" {
				if _, ok := m.Packages[c]; ok {
					delete(m.Packages, c)
					changed()
				}
			}
			if c := componentOf(p, "active"); c != "" && path.Base(p) == c {
				if _, ok := m.Active[c]; ok {
					delete(m.Active, c)
					changed()
				}
			}
		}
		for _, p := range deletedPaths(script) {
			delete(m.Files, p)
		}
	default:
		return fail(127, "fleetsim: step %q is not simulated", name)
	}
	return stepResult{stdout: out.Bytes()}
}

// forList is the words of a script's first "for p in WORDS; do" line.
func forList(script string) []string {
	for line := range strings.SplitSeq(script, "\n") {
		if rest, ok := strings.CutPrefix(line, "for p in "); ok {
			rest, _, _ = strings.Cut(rest, "; do")
			w, _ := shellWords(rest)
			return w
		}
	}
	return nil
}

// deletedPaths are the files a deleteFilesSnippet removes: the words of
// its "for p in ...; do" line followed by the line that rm's "$p".
func deletedPaths(script string) []string {
	lines := strings.Split(script, "\n")
	for i, line := range lines {
		rest, ok := strings.CutPrefix(line, "for p in ")
		if !ok || i+1 >= len(lines) || !strings.Contains(lines[i+1], `rm -f -- "$p"`) {
			continue
		}
		rest, _, _ = strings.Cut(rest, "; do")
		w, _ := shellWords(rest)
		return w
	}
	return nil
}
