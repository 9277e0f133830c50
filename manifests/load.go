package manifests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	yamlv2 "go.yaml.in/yaml/v2"

	"sigs.k8s.io/yaml"
)

// MaxManifestBytes bounds what drover reads, so a runaway file is an
// error and never an out-of-memory.
const MaxManifestBytes = 4 << 20

// Loaded is a parsed, defaulted and validated manifest with what was
// learnt while loading it.
type Loaded struct {
	Cluster *Cluster
	// Path and Dir locate the manifest; artifact paths are relative to Dir.
	Path string
	Dir  string
	// Hash is the sha256 of the manifest bytes and the inventory file's;
	// it identifies the generation.
	Hash string
	// Warnings did not block the load.
	Warnings Problems
	// ArtifactSizes are the sizes of the components' artifact files on
	// this host as the load found them, by ArtifactPath (a missing file
	// has none). Loading is where drover reads this host's disk; the
	// planner only reads what the load found.
	ArtifactSizes map[string]int64
	// renderer is validation's, holding what it rendered (Renderer).
	renderer atomic.Pointer[Renderer]
}

// Renderer is a renderer for the manifest, with a budget of its own that
// ctx can stop. The first caller gets the one validation rendered every
// template for every node with, its outputs kept, so a compile right
// after the load renders nothing again (at 10,000 nodes that was a fifth
// of an edit's reaction); a Renderer is not safe for concurrent use, so
// every later caller gets a new one.
func (l *Loaded) Renderer(ctx context.Context) *Renderer {
	if r := l.renderer.Swap(nil); r != nil {
		r.renew(ctx)
		return r
	}
	return l.Cluster.NewRenderer(ctx)
}

// ArtifactPath is an artifact path resolved against the manifest's
// directory, so the executor does not depend on the working directory.
func (l *Loaded) ArtifactPath(p string) string { return resolve(l.Dir, p) }

// statArtifacts fills ArtifactSizes.
func (l *Loaded) statArtifacts() {
	l.ArtifactSizes = map[string]int64{}
	for _, comp := range l.Cluster.Spec.Components {
		if a := comp.Artifact; a != nil && a.Path != "" {
			p := l.ArtifactPath(a.Path)
			if st, err := os.Stat(p); err == nil {
				l.ArtifactSizes[p] = st.Size()
			}
		}
	}
}

// Parse decodes one manifest strictly: an unknown or misspelt field is an
// error, and so is anything too large, too deep or too alias-heavy to
// decode cheaply (see checkShape). Problems with field paths (unknown
// fields, wrong kinds) come back together as an *InvalidError with an
// empty Path; scalars that YAML would read differently from how they look
// are kept for Validate to report.
func Parse(data []byte) (*Cluster, error) {
	var c Cluster
	ps, err := decodeStrict(data, &c)
	if err != nil {
		return nil, err
	}
	c.decodeProblems = ps
	return &c, nil
}

// ParseInventory decodes an inventoryFile with the same strictness and
// limits. The problems it returns have paths inside the inventory
// (nodes[0].labels.zone) and do not block by themselves.
func ParseInventory(data []byte) (*Inventory, Problems, error) {
	var in Inventory
	ps, err := decodeStrict(data, &in)
	if err != nil {
		return nil, nil, err
	}
	return &in, ps, nil
}

// decodeStrict decodes one YAML document into into. It returns the
// problems inspect found when they did not stop the decoding.
func decodeStrict(data []byte, into any) (Problems, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", len(data), MaxManifestBytes)
	}
	doc, strict, err := readShape(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	ps := inspect(doc, reflect.TypeOf(into))
	c, _ := into.(*Cluster)
	var lists []commandList
	if len(ps) == 0 && strict == nil {
		if c != nil {
			lists = takeCommandLists(doc)
		}
		if decodeDoc(doc, into) {
			for _, l := range lists {
				l.put(c)
			}
			return nil, nil
		}
		reflect.ValueOf(into).Elem().SetZero()
	}
	if len(lists) > 0 {
		if data, err = yamlv2.Marshal(doc); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		if len(ps) > 0 {
			return nil, &InvalidError{Problems: ps}
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	for _, l := range lists {
		l.put(c)
	}
	return ps, nil
}

// commandList is a service's exec or reload given as a list of
// arguments. The JSON decoder behind sigs.k8s.io/yaml guides each scalar
// by its Go field's type, which a field of two forms would lose for
// everything below it; so a list is taken out of the document before it
// is decoded (its field left "") and put into ExecArgs or ReloadArgs
// after. inspect has checked its shape by then (the textOrList tag).
type commandList struct {
	component int
	field     string // exec or reload
	args      []string
}

func (l commandList) put(c *Cluster) {
	if l.component >= len(c.Spec.Components) || c.Spec.Components[l.component].Service == nil {
		return
	}
	s := c.Spec.Components[l.component].Service
	if l.field == "exec" {
		s.ExecArgs = l.args
	} else {
		s.ReloadArgs = l.args
	}
}

// takeCommandLists finds the command lists of doc and replaces each with "".
func takeCommandLists(doc any) []commandList {
	spec, _ := mapKey(doc, "spec").(map[any]any)
	comps, _ := spec["components"].([]any)
	var out []commandList
	for i, comp := range comps {
		svc, _ := mapKey(comp, "service").(map[any]any)
		for _, field := range []string{"exec", "reload"} {
			list, ok := svc[field].([]any)
			if !ok {
				continue
			}
			args := make([]string, len(list))
			for j, a := range list {
				args[j] = fmt.Sprint(a)
			}
			out = append(out, commandList{component: i, field: field, args: args})
			svc[field] = ""
		}
	}
	return out
}

func mapKey(v any, key string) any {
	m, _ := v.(map[any]any)
	return m[key]
}

// Load reads, parses, defaults and validates the manifest at path. It
// returns an error carrying every problem when the manifest is not usable.
func Load(path string) (*Loaded, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return LoadBytes(path, data)
}

// LoadBytes is Load for bytes already read from path.
func LoadBytes(path string, data []byte) (*Loaded, error) {
	return LoadBytesContext(context.Background(), path, data)
}

// LoadBytesContext is LoadBytes that ctx can stop early: validation
// renders every template for every node, which may take seconds.
func LoadBytesContext(ctx context.Context, path string, data []byte) (*Loaded, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: manifest is empty", path)
	}
	c, err := Parse(data)
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		invalid.Path = path
		return nil, invalid
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Absolute, so what the manifest names does not depend on the working
	// directory of whoever uses the load later.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	h.Write(data)
	// With both nodes and inventoryFile set, Validate reports the clash
	// along with everything else.
	if c.Spec.InventoryFile != "" && len(c.Spec.Nodes) == 0 {
		invPath := resolve(dir, c.Spec.InventoryFile)
		inv, err := ReadRegular(invPath, MaxManifestBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.inventoryFile: %w", path, err)
		}
		if looksLikeAnsibleINI(inv) {
			return nil, fmt.Errorf("%s: %w", invPath, ErrAnsibleInventory)
		}
		in, ps, err := parseInventoryFile(inv)
		if errors.As(err, &invalid) {
			invalid.Path = invPath
			return nil, &InventoryError{File: invPath, Err: invalid}
		}
		if err != nil {
			return nil, &InventoryError{File: invPath, Err: fmt.Errorf("%s: %w", invPath, err)}
		}
		c.Spec.Nodes = in.Nodes
		c.nodesFromInventory = true
		for _, p := range ps {
			p.Path = c.Spec.InventoryFile + ":" + p.Path
			c.decodeProblems = append(c.decodeProblems, p)
		}
		h.Write([]byte{0})
		h.Write(inv)
	}
	c.SetDefaults()
	problems, r := c.validate(ctx)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if problems.HasErrors() {
		return nil, &InvalidError{Path: path, Problems: problems}
	}
	l := &Loaded{
		Cluster:  c,
		Path:     path,
		Dir:      dir,
		Hash:     hex.EncodeToString(h.Sum(nil)),
		Warnings: problems.Warnings(),
	}
	if r != nil {
		l.renderer.Store(r)
	}
	l.statArtifacts()
	return l, nil
}

// readLimited reads at most MaxManifestBytes; it reads to EOF rather than
// trusting the size stat reports, so a pipe given on the command line
// (drover validate -f /dev/stdin) works too. Files a manifest names, and
// the manifest a daemon watches, are read with ReadRegular instead.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, path, MaxManifestBytes)
}

// readAtMost reads f to EOF, refusing more than limit bytes.
func readAtMost(f *os.File, path string, limit int64) ([]byte, error) {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", path, limit)
	}
	return data, nil
}

// resolve makes p absolute against dir, expanding a leading ~/.
func resolve(dir, p string) string {
	p = ExpandHome(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// ExpandHome expands a leading "~/" to the user's home directory.
func ExpandHome(p string) string {
	if len(p) >= 2 && p[:2] == "~/" {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// MissingArtifacts warns about artifact paths that do not exist on the
// bootstrap host. It is not part of Validate, which looks at the manifest
// alone: the daemon only needs an artifact when it installs it.
func MissingArtifacts(l *Loaded) Problems {
	var ps Problems
	for i, comp := range l.Cluster.Spec.Components {
		a := comp.Artifact
		if a == nil || a.Path == "" || comp.State == StateAbsent {
			continue
		}
		st, err := os.Stat(resolve(l.Dir, a.Path))
		switch {
		case err != nil:
			ps = append(ps, Problem{
				Path:     componentPath(i) + ".artifact.path",
				Message:  fmt.Sprintf("%s: %v", a.Path, errors.Unwrap(err)),
				Severity: SeverityWarning,
			})
		case !st.Mode().IsRegular():
			// The install would refuse it (OpenRegular): say so now.
			ps = append(ps, Problem{
				Path:     componentPath(i) + ".artifact.path",
				Message:  regular(a.Path, st).Error(),
				Severity: SeverityWarning,
			})
		}
	}
	return ps
}

// InventoryError is an inventoryFile that could not be decoded. Error
// is in full (keys, values), for the operator's terminal and log; Public
// names only the file, the line and the kinds of problem, for the status
// anyone who reaches the daemon may read: the file may be any file the
// daemon can read (spec.inventoryFile: /etc/shadow), and what it holds
// must not be repeated there.
type InventoryError struct {
	File string
	Err  error
}

func (e *InventoryError) Error() string { return e.Err.Error() }
func (e *InventoryError) Unwrap() error { return e.Err }

// yamlLine finds the line a YAML error names.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// Public is the error without any of the file's contents.
func (e *InventoryError) Public() string {
	var invalid *InvalidError
	if errors.As(e.Err, &invalid) {
		kinds := map[string]bool{}
		for _, p := range invalid.Problems {
			switch {
			case strings.Contains(p.Message, "unknown field"):
				kinds["unknown fields"] = true
			case strings.Contains(p.Message, "must be"):
				kinds["values of the wrong kind"] = true
			default:
				kinds["invalid values"] = true
			}
		}
		list := make([]string, 0, len(kinds))
		for k := range kinds {
			list = append(list, k)
		}
		slices.Sort(list)
		return fmt.Sprintf("inventory file %s: %d problem(s): %s (run drover validate for details)", e.File, len(invalid.Problems), strings.Join(list, ", "))
	}
	where := ""
	if m := yamlLine.FindStringSubmatch(e.Err.Error()); m != nil {
		where = " at line " + m[1]
	}
	return fmt.Sprintf("inventory file %s: not a valid inventory%s (run drover validate for details)", e.File, where)
}
