package manifests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// NodeInfo is a node as templates see it.
type NodeInfo struct {
	Name    string
	Address string
	Roles   []string
	Labels  map[string]string
	// Index is the node's 0-based position among the nodes of each of its
	// roles, in manifest order (stable, so ids such as ZooKeeper's myid
	// can be derived from it).
	Index map[string]int
}

// ComponentInfo is the component as templates see it.
type ComponentInfo struct {
	Name    string
	Version string
	// Dir is the component's stable path (the active symlink), so rendered
	// files and units stay valid when a rollback switches the link.
	Dir string
	// VersionDir is this version's own directory.
	VersionDir string
	// Joining is true when this rendering is for a member joining a
	// quorum group that has healthy members already: its files, unit and
	// checks, and the preJoin hook (etcd's --initial-cluster-state
	// existing). It is false otherwise, a founding member's first start
	// included.
	Joining bool
	// Members are the members of the component's group, manifest order:
	// every node the component is placed on, or, while a member joins or
	// leaves, the group as it is once that change is made (the members
	// present at join time and the joining node; those that stay after a
	// leave).
	Members []NodeInfo
}

// TemplateContext is the data every file template and service exec line is executed with.
type TemplateContext struct {
	Cluster   ClusterInfo
	Node      NodeInfo
	Component ComponentInfo
	// Member is the node that joins or leaves a quorum group, in the
	// templates rendered for that change (preJoin, postLeave, and the
	// joining node's own); the zero NodeInfo elsewhere.
	Member NodeInfo
	// Dir is short for .Component.Dir.
	Dir string
}

// ClusterInfo is the cluster as templates see it.
type ClusterInfo struct {
	Name   string
	Labels map[string]string
	Nodes  []NodeInfo
	// Roles lists the nodes of each role, in manifest order.
	Roles map[string][]NodeInfo
}

// RenderedFile is one file exactly as a node receives it.
type RenderedFile struct {
	// Path is absolute on the node.
	Path    string
	Mode    os.FileMode
	Content []byte
	// OnChange is the file's change policy (File.OnChange): what a
	// change or drift of it needs; "" is restart.
	OnChange string
	// Sensitive files are never shown: a plan says only that they change.
	Sensitive bool
	// digest is the Digest a Renderer computed once for content every
	// node shares; "" when not known.
	digest string
}

// Digest is the sha256 of the content, hex.
func (f RenderedFile) Digest() string {
	if f.digest != "" {
		return f.digest
	}
	sum := sha256.Sum256(f.Content)
	return hex.EncodeToString(sum[:])
}

// ModeBits are the bits of a file mode drover manages: permissions plus
// setuid, setgid and sticky. Modes are kept as the octal number chmod and
// stat -c %a use (so 04755 is setuid), not as Go's os.FileMode flags,
// whose Perm() would drop those three bits.
const ModeBits os.FileMode = 0o7777

// FileDigest is what a probe reads back of one file on a node.
type FileDigest struct {
	Path   string
	Mode   os.FileMode
	SHA256 string
}

// ConfigHash combines file digests into one hash. The bootstrap host
// computes it from rendered files and the probe from what is on disk, so
// both sides must feed it the same fields; order does not matter.
func ConfigHash(files []FileDigest) string {
	lines := make([]string, len(files))
	for i, f := range files {
		lines[i] = f.Path + " " + octalMode(uint32(f.Mode&ModeBits)) + " " + f.SHA256 + "\n"
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// octalMode is m as fmt's %04o writes it, without fmt's cost (ConfigHash
// runs for every component of every node).
func octalMode(m uint32) string {
	o := strconv.FormatUint(uint64(m), 8)
	return strings.Repeat("0", max(0, 4-len(o))) + o
}

// Digests returns the digests of rendered files, for ConfigHash.
func Digests(files []RenderedFile) []FileDigest {
	out := make([]FileDigest, len(files))
	for i, f := range files {
		out[i] = FileDigest{Path: f.Path, Mode: f.Mode, SHA256: f.Digest()}
	}
	return out
}

// ActiveDir is the stable path of a component on a node.
func ActiveDir(installRoot, component string) string {
	return path.Join(installRoot, "active", component)
}

// VersionDir is where one version of a component is unpacked.
func VersionDir(installRoot, component, version string) string {
	return path.Join(installRoot, "packages", component, version)
}

// FilePath is the absolute path of a component file on a node.
func FilePath(installRoot string, comp *Component, f File) string {
	if path.IsAbs(f.Path) {
		return path.Clean(f.Path)
	}
	return path.Join(VersionDir(installRoot, comp.Name, comp.Version), f.Path)
}

// NodeByName finds a node.
func (c *Cluster) NodeByName(name string) (*Node, bool) {
	for i := range c.Spec.Nodes {
		if c.Spec.Nodes[i].Name == name {
			return &c.Spec.Nodes[i], true
		}
	}
	return nil, false
}

// ComponentByName finds a component.
func (c *Cluster) ComponentByName(name string) (*Component, bool) {
	for i := range c.Spec.Components {
		if c.Spec.Components[i].Name == name {
			return &c.Spec.Components[i], true
		}
	}
	return nil, false
}

// Matches reports whether the component belongs on the node: the node has
// any of its roles, or all of its selector labels; with neither, every node.
func (comp *Component) Matches(n *Node) bool {
	if len(comp.Roles) == 0 && len(comp.Selector) == 0 {
		return true
	}
	for _, r := range comp.Roles {
		if slices.Contains(n.Roles, r) {
			return true
		}
	}
	if len(comp.Selector) > 0 {
		for k, v := range comp.Selector {
			if n.Labels[k] != v {
				return false
			}
		}
		return true
	}
	return false
}

// NodesFor lists the nodes the component belongs on, in manifest order.
func (c *Cluster) NodesFor(comp *Component) []*Node {
	var out []*Node
	for i := range c.Spec.Nodes {
		if comp.Matches(&c.Spec.Nodes[i]) {
			out = append(out, &c.Spec.Nodes[i])
		}
	}
	return out
}

// clusterInfo builds the node views every template of the cluster shares.
func (c *Cluster) clusterInfo() ClusterInfo {
	ci := ClusterInfo{Name: c.Metadata.Name, Labels: c.Metadata.Labels, Roles: map[string][]NodeInfo{}}
	for _, n := range c.Spec.Nodes {
		ni := NodeInfo{Name: n.Name, Address: n.Address, Roles: n.Roles, Labels: n.Labels, Index: map[string]int{}}
		for _, r := range n.Roles {
			ni.Index[r] = len(ci.Roles[r])
			ci.Roles[r] = append(ci.Roles[r], ni)
		}
		// Index is a map, so the copies in Roles see the whole of it.
		ci.Nodes = append(ci.Nodes, ni)
	}
	return ci
}

// Context is the template context of one component on one node.
func (c *Cluster) Context(node *Node, comp *Component) TemplateContext {
	return c.NewRenderer(context.Background()).Context(node, comp)
}

// Renderer renders the templates of one manifest. It builds the cluster's
// view once, charges every execution to one budget (see MaxTemplateSteps)
// and renders a template whose output cannot depend on the node once per
// component, so rendering every node stays linear in the number of nodes.
// It is not safe for concurrent use.
type Renderer struct {
	c      *Cluster
	ci     ClusterInfo
	byName map[string]int // index in ci.Nodes
	budget *budget
	// shared holds the output of node-independent templates, by component
	// and template (node ""); outputs every other output, by node too, so
	// what validation rendered the compile does not render again.
	shared  map[outputKey]sharedOutput
	outputs map[outputKey][]byte
	// parsed holds every template parsed so far, by name and text: a
	// template is parsed once per manifest, not once per node (parsing
	// was half of a 10,000-node load). Its functions are bound to this
	// renderer's cluster view and budget, which ForMembership shares.
	parsed map[templateKey]*template.Template
	// hasTemplates is templated's answer for each check and hook.
	hasTemplates map[any]bool
	// members are the node views of each component's nodes (its
	// .Component.Members), built once per component.
	members map[*Component][]NodeInfo
	// components are each component's view but its members, made once.
	components map[*Component]ComponentInfo
	// paths are ComponentPath's answers.
	paths map[*Component]string
	// membership, when set, is the quorum change every template of this
	// renderer is rendered for (ForMembership).
	membership *Membership
}

// Membership is a change of a quorum group's membership: one node joins
// or leaves. Templates rendered for it see it as .Component.Joining,
// .Component.Members and .Member.
type Membership struct {
	// Joining is true for a join, false for a leave.
	Joining bool
	// Member is the node that joins or leaves.
	Member string
	// Members are the group's members once the change is made, by name.
	Members []string
}

// ForMembership is a renderer of the same manifest, charged to the same
// budget, whose templates see the change m. Its cache of
// node-independent output is its own: what it renders differs from the
// steady state's.
func (r *Renderer) ForMembership(m Membership) *Renderer {
	c := *r
	c.shared = map[outputKey]sharedOutput{}
	c.outputs = map[outputKey][]byte{}
	c.membership = &m
	return &c
}

// outputKey names what one template renders for a component on a node
// ("": every node). Its name is part of it: two files of one text are two
// renders, each charged to the budget, as the node receives both.
// Validation and the compile name every template alike (CommandTemplate,
// ComponentPath), so the compile finds what validation rendered.
type outputKey struct {
	comp             *Component
	name, text, node string
}

type templateKey struct{ name, text string }

type sharedOutput struct {
	content []byte
	digest  string
}

// NewRenderer starts rendering c; ctx stops a long execution early (a
// daemon shutting down).
func (c *Cluster) NewRenderer(ctx context.Context) *Renderer {
	ci := c.clusterInfo()
	byName := make(map[string]int, len(ci.Nodes))
	for i, n := range ci.Nodes {
		if _, dup := byName[n.Name]; !dup {
			byName[n.Name] = i
		}
	}
	return &Renderer{c: c, ci: ci, byName: byName, budget: newBudget(ctx), shared: map[outputKey]sharedOutput{}, outputs: map[outputKey][]byte{}, parsed: map[templateKey]*template.Template{}, hasTemplates: map[any]bool{}, members: map[*Component][]NodeInfo{}, components: map[*Component]ComponentInfo{}, paths: map[*Component]string{}}
}

// ComponentPath is comp's field path, spec.components[i]: templates are
// named by the field they are in, by validation and the compile alike.
func (r *Renderer) ComponentPath(comp *Component) string {
	p, ok := r.paths[comp]
	if !ok {
		p = r.c.componentPathOf(comp)
		r.paths[comp] = p
	}
	return p
}

// renew gives r the fresh budget NewRenderer(ctx) would, in place: the
// templates r parsed charge the budget they were parsed with.
func (r *Renderer) renew(ctx context.Context) { *r.budget = *newBudget(ctx) }

// InstallRoot is the manifest's spec.installRoot.
func (r *Renderer) InstallRoot() string { return r.c.Spec.InstallRoot }

// node is the view of the node of that name; the zero view when the
// manifest has none.
func (r *Renderer) node(name string) NodeInfo {
	if i, ok := r.byName[name]; ok {
		return r.ci.Nodes[i]
	}
	return NodeInfo{}
}

// componentMembers is .Component.Members of comp in the steady state:
// every node it is placed on.
func (r *Renderer) componentMembers(comp *Component) []NodeInfo {
	if m, ok := r.members[comp]; ok {
		return m
	}
	var out []NodeInfo
	for _, n := range r.c.NodesFor(comp) {
		out = append(out, r.node(n.Name))
	}
	if r.members == nil {
		r.members = map[*Component][]NodeInfo{}
	}
	r.members[comp] = out
	return out
}

// Context is the template context of one component on one node.
func (r *Renderer) Context(node *Node, comp *Component) TemplateContext {
	info, ok := r.components[comp]
	if !ok {
		info = ComponentInfo{
			Name: comp.Name, Version: comp.Version, Dir: ActiveDir(r.c.Spec.InstallRoot, comp.Name),
			VersionDir: VersionDir(r.c.Spec.InstallRoot, comp.Name, comp.Version),
		}
		r.components[comp] = info
	}
	ctx := TemplateContext{Cluster: r.ci, Node: r.node(node.Name), Component: info, Dir: info.Dir}
	if m := r.membership; m != nil {
		ctx.Component.Joining = m.Joining
		ctx.Member = r.node(m.Member)
		ctx.Component.Members = make([]NodeInfo, 0, len(m.Members))
		for _, name := range m.Members {
			ctx.Component.Members = append(ctx.Component.Members, r.node(name))
		}
	} else {
		ctx.Component.Members = r.componentMembers(comp)
	}
	return ctx
}

// templateFuncs are the helpers templates may call. nodesWithRole needs the
// cluster, so the map is built per context.
func templateFuncs(ci ClusterInfo) template.FuncMap {
	return template.FuncMap{
		"nodesWithRole": func(role string) []NodeInfo { return ci.Roles[role] },
		"add":           func(a, b int) int { return a + b },
		"join": func(sep string, items any) (string, error) {
			switch v := items.(type) {
			case []string:
				return strings.Join(v, sep), nil
			case []NodeInfo:
				names := make([]string, len(v))
				for i, n := range v {
					names[i] = n.Address
				}
				return strings.Join(names, sep), nil
			default:
				return "", fmt.Errorf("join: cannot join %T", items)
			}
		},
		"quote": strconv.Quote,
	}
}

// ParseTemplate parses a template with drover's helpers; Validate uses it
// to report syntax errors before any node is touched.
func ParseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(templateFuncs(ClusterInfo{})).Parse(text)
}

// MaxRenderedBytes bounds one rendered file, so a runaway loop in a
// template is an error and never an out-of-memory.
const MaxRenderedBytes = 8 << 20

// ErrRenderTooLarge is returned when a template renders more than MaxRenderedBytes.
var ErrRenderTooLarge = fmt.Errorf("renders more than %d bytes", MaxRenderedBytes)

// Execute renders text with the context, with a budget of its own; the
// output is deterministic.
func Execute(name, text string, ctx TemplateContext) ([]byte, error) {
	return execute(newBudget(context.Background()), name, text, ctx)
}

// Execute renders one template for one node, charged to the manifest's budget.
func (r *Renderer) Execute(name, text string, node *Node, comp *Component) ([]byte, error) {
	out, _, err := r.execute(name, text, node, comp)
	return out, err
}

// execute is Execute that also returns the output's digest when it is
// shared by every node (so it is computed once).
func (r *Renderer) execute(name, text string, node *Node, comp *Component) ([]byte, string, error) {
	key := outputKey{comp: comp, name: name, text: text}
	if s, ok := r.shared[key]; ok {
		return s.content, s.digest, nil
	}
	nodeKey := outputKey{comp: comp, name: name, text: text, node: node.Name}
	if out, ok := r.outputs[nodeKey]; ok {
		return out, "", nil
	}
	t, err := r.parse(templateKey{name: name, text: text})
	if err != nil {
		return nil, "", err
	}
	out, err := run(t, r.budget, r.Context(node, comp))
	if err != nil {
		return nil, "", err
	}
	if !nodeIndependent(t) {
		r.outputs[nodeKey] = out
		return out, "", nil
	}
	sum := sha256.Sum256(out)
	s := sharedOutput{content: out, digest: hex.EncodeToString(sum[:])}
	r.shared[key] = s
	return s.content, s.digest, nil
}

// parse is the template k, parsed on its first use.
func (r *Renderer) parse(k templateKey) (*template.Template, error) {
	if t, ok := r.parsed[k]; ok {
		return t, nil
	}
	t, err := parseBudgeted(k.name, k.text, r.ci, r.budget)
	if err != nil {
		return nil, err
	}
	r.parsed[k] = t
	return t, nil
}

func execute(b *budget, name, text string, ctx TemplateContext) ([]byte, error) {
	t, err := parseBudgeted(name, text, ctx.Cluster, b)
	if err != nil {
		return nil, err
	}
	return run(t, b, ctx)
}

// parseBudgeted parses text with drover's helpers and the budgeted
// builtins, instrumented to charge its steps.
func parseBudgeted(name, text string, ci ClusterInfo, b *budget) (*template.Template, error) {
	funcs := budgetedFuncs(b)
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(ci)).Funcs(funcs).Parse(text)
	if err != nil {
		return nil, err
	}
	if err := instrument(t, funcs); err != nil {
		return nil, err
	}
	return t, nil
}

// run executes t; over budget, the error is the budget's own, without
// the template engine's position in the instrumentation.
func run(t *template.Template, b *budget, ctx TemplateContext) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if testHookRun != nil {
		testHookRun()
	}
	buf := &cappedBuffer{limit: MaxRenderedBytes, budget: b}
	if err := t.Execute(buf, ctx); err != nil {
		if b.err != nil {
			return nil, b.err
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// testHookRun, when set, is called for every template execution: tests
// count them.
var testHookRun func()

// cappedBuffer is a bytes.Buffer that refuses to grow past limit, and
// charges what it takes to the budget.
type cappedBuffer struct {
	bytes.Buffer
	limit  int
	budget *budget
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, ErrRenderTooLarge
	}
	if err := b.budget.charge(len(p)); err != nil {
		return 0, err
	}
	return b.Buffer.Write(p)
}

// Render produces the files one node receives for one component.
func (c *Cluster) Render(node *Node, comp *Component) ([]RenderedFile, error) {
	return c.NewRenderer(context.Background()).Render(node, comp)
}

// Render produces the files one node receives for one component.
func (r *Renderer) Render(node *Node, comp *Component) ([]RenderedFile, error) {
	out := make([]RenderedFile, 0, len(comp.Files))
	for _, f := range comp.Files {
		content, digest, err := r.execute(f.Path, f.Template, node, comp)
		if err != nil {
			return nil, fmt.Errorf("render %s/%s for node %s: %w", comp.Name, f.Path, node.Name, err)
		}
		mode, err := ParseMode(f.Mode)
		if err != nil {
			return nil, fmt.Errorf("render %s/%s: %w", comp.Name, f.Path, err)
		}
		out = append(out, RenderedFile{Path: FilePath(r.c.Spec.InstallRoot, comp, f), Mode: mode, Content: content, OnChange: f.OnChange, Sensitive: f.Sensitive, digest: digest})
	}
	return out, nil
}

// ParseMode parses an octal file mode such as "0644".
func ParseMode(s string) (os.FileMode, error) {
	if s == "" {
		s = DefaultFileMode
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("mode %q: must be an octal file mode such as 0644", s)
	}
	return os.FileMode(v), nil
}

// NodeFile is one rendered file and the component it belongs to.
type NodeFile struct {
	Component string
	RenderedFile
}

// RenderNode renders every file the node receives, from each present
// component that matches it, in manifest order.
func (c *Cluster) RenderNode(node *Node) ([]NodeFile, error) {
	r := c.NewRenderer(context.Background())
	var out []NodeFile
	for i := range c.Spec.Components {
		comp := &c.Spec.Components[i]
		if comp.State == StateAbsent || !comp.Matches(node) {
			continue
		}
		files, err := r.Render(node, comp)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			out = append(out, NodeFile{Component: comp.Name, RenderedFile: f})
		}
	}
	return out, nil
}

// SHA256Hex is the hex SHA-256 of b: how drover names content it compares
// (rendered files, units, receipts' hashes).
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
