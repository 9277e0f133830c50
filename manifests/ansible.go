package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// An Ansible inventory (INI or YAML) becomes drover nodes: each host a
// node named by its inventory name, its groups (with their parents,
// through children) its roles, ansible_host/port/user/
// ansible_ssh_private_key_file its address, port, user and identity file,
// a ProxyJump (or ssh -W ProxyCommand) in ansible_ssh_common_args or
// ansible_ssh_extra_args its jump hosts, and every other variable a
// label. Variables apply as Ansible applies them: all's, then each
// group's from parents to children, then the host's own. What cannot be
// mapped is a warning, one per variable and place it is set.

// AnsibleImport is the outcome of reading an Ansible inventory.
type AnsibleImport struct {
	Nodes    []Node
	Warnings []string
}

// ErrNotAnsibleYAML says a YAML document is not an Ansible inventory.
var ErrNotAnsibleYAML = errors.New("not an Ansible YAML inventory (a mapping of groups, each with hosts, children or vars)")

// ImportAnsible reads an Ansible inventory, YAML or INI (told apart by
// content: YAML whose top level maps groups to hosts/children/vars).
func ImportAnsible(data []byte) (*AnsibleImport, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", len(data), MaxManifestBytes)
	}
	parse := parseAnsibleINI
	if looksLikeYAML(data) {
		parse = parseAnsibleYAML
	}
	inv, err := parse(data)
	if err != nil {
		return nil, err
	}
	return inv.nodes(), nil
}

// looksLikeYAML: a YAML inventory's first line (comments aside) is a
// group's key ("all:") or a document start; an INI one's is a section or
// a host.
func looksLikeYAML(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		return line == "---" || strings.HasSuffix(line, ":") || strings.Contains(line, ": ")
	}
	return false
}

// ImportAnsibleYAML is ImportAnsible for YAML only (an inventoryFile).
func ImportAnsibleYAML(data []byte) (*AnsibleImport, error) {
	inv, err := parseAnsibleYAML(data)
	if err != nil {
		return nil, err
	}
	return inv.nodes(), nil
}

// FormatNodes prints nodes as a manifest's (or an inventoryFile's) nodes: block.
func FormatNodes(nodes []Node) ([]byte, error) {
	return yaml.Marshal(Inventory{Nodes: nodes})
}

// ansibleVar is one variable as set in one place.
type ansibleVar struct {
	key, value string
	complex    bool   // a list or mapping: no label can hold it
	where      string // "group web", "host web1"
}

type ansibleGroup struct {
	name     string
	vars     []ansibleVar
	hosts    []string
	children []string
}

type ansibleHost struct {
	name string
	vars []ansibleVar
}

type ansibleInventory struct {
	groups    map[string]*ansibleGroup
	hosts     map[string]*ansibleHost
	hostOrder []string
}

func newAnsibleInventory() *ansibleInventory {
	return &ansibleInventory{groups: map[string]*ansibleGroup{}, hosts: map[string]*ansibleHost{}}
}

func (inv *ansibleInventory) group(name string) *ansibleGroup {
	g := inv.groups[name]
	if g == nil {
		g = &ansibleGroup{name: name}
		inv.groups[name] = g
	}
	return g
}

func (inv *ansibleInventory) host(name string) *ansibleHost {
	h := inv.hosts[name]
	if h == nil {
		h = &ansibleHost{name: name}
		inv.hosts[name] = h
		inv.hostOrder = append(inv.hostOrder, name)
	}
	return h
}

// addHost puts host (a pattern like db[01:03]) in group with its vars.
func (inv *ansibleInventory) addHost(group, pattern string, vars []ansibleVar) error {
	names, err := expandHostPattern(pattern)
	if err != nil {
		return err
	}
	g := inv.group(group)
	for _, name := range names {
		h := inv.host(name)
		if !slices.Contains(g.hosts, name) {
			g.hosts = append(g.hosts, name)
		}
		for _, v := range vars {
			v.where = "host " + name
			h.vars = append(h.vars, v)
		}
	}
	return nil
}

// expandHostPattern expands Ansible's ranges: web[01:03] is web01,
// web02, web03; [a:c] letters; [1:9:2] a stride.
func expandHostPattern(p string) ([]string, error) {
	open := strings.IndexByte(p, '[')
	if open < 0 {
		return []string{p}, nil
	}
	end := strings.IndexByte(p[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("host pattern %q: [ without ]", p)
	}
	end += open
	parts := strings.Split(p[open+1:end], ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("host pattern %q: want [start:end] or [start:end:step]", p)
	}
	step := 1
	if len(parts) == 3 {
		s, err := strconv.Atoi(parts[2])
		if err != nil || s < 1 {
			return nil, fmt.Errorf("host pattern %q: bad step %q", p, parts[2])
		}
		step = s
	}
	var items []string
	if lo, err1 := strconv.Atoi(parts[0]); err1 == nil {
		hi, err := strconv.Atoi(parts[1])
		if err != nil || hi < lo || hi-lo > 10000 {
			return nil, fmt.Errorf("host pattern %q: bad range", p)
		}
		width := 0
		if len(parts[0]) > 1 && parts[0][0] == '0' {
			width = len(parts[0])
		}
		for i := lo; i <= hi; i += step {
			items = append(items, fmt.Sprintf("%0*d", width, i))
		}
	} else if len(parts[0]) == 1 && len(parts[1]) == 1 && parts[0] <= parts[1] {
		for c := parts[0][0]; c <= parts[1][0]; c += byte(step) {
			items = append(items, string(c))
		}
	} else {
		return nil, fmt.Errorf("host pattern %q: bad range", p)
	}
	var out []string
	for _, it := range items {
		rest, err := expandHostPattern(p[end+1:])
		if err != nil {
			return nil, err
		}
		for _, r := range rest {
			out = append(out, p[:open]+it+r)
		}
	}
	return out, nil
}

// parseAnsibleYAML reads the YAML inventory format: groups (all at the
// top) with hosts, vars and children, recursively.
func parseAnsibleYAML(data []byte) (*ansibleInventory, error) {
	if _, err := checkShape(data); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var top yamlv2.MapSlice
	if err := yamlv2.Unmarshal(data, &top); err != nil || len(top) == 0 {
		return nil, ErrNotAnsibleYAML
	}
	for _, item := range top {
		if _, ok := item.Value.(yamlv2.MapSlice); !ok && item.Value != nil {
			return nil, ErrNotAnsibleYAML
		}
		if m, ok := item.Value.(yamlv2.MapSlice); ok && !isGroupBody(m) {
			return nil, ErrNotAnsibleYAML
		}
	}
	inv := newAnsibleInventory()
	for _, item := range top {
		if err := inv.yamlGroup(fmt.Sprint(item.Key), item.Value, 0); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

func isGroupBody(m yamlv2.MapSlice) bool {
	for _, kv := range m {
		switch fmt.Sprint(kv.Key) {
		case "hosts", "children", "vars":
		default:
			return false
		}
	}
	return true
}

func (inv *ansibleInventory) yamlGroup(name string, body any, depth int) error {
	if depth > MaxNesting {
		return fmt.Errorf("group %s: children nested more than %d deep", name, MaxNesting)
	}
	g := inv.group(name)
	m, _ := body.(yamlv2.MapSlice)
	for _, kv := range m {
		switch key := fmt.Sprint(kv.Key); key {
		case "hosts":
			hosts, ok := kv.Value.(yamlv2.MapSlice)
			if !ok && kv.Value != nil {
				return fmt.Errorf("group %s: hosts must be a mapping of host names", name)
			}
			for _, h := range hosts {
				vars, err := yamlVars(h.Value, "")
				if err != nil {
					return fmt.Errorf("group %s, host %v: %w", name, h.Key, err)
				}
				if err := inv.addHost(name, fmt.Sprint(h.Key), vars); err != nil {
					return fmt.Errorf("group %s: %w", name, err)
				}
			}
		case "vars":
			vars, err := yamlVars(kv.Value, "group "+name)
			if err != nil {
				return fmt.Errorf("group %s: vars: %w", name, err)
			}
			g.vars = append(g.vars, vars...)
		case "children":
			children, ok := kv.Value.(yamlv2.MapSlice)
			if !ok && kv.Value != nil {
				return fmt.Errorf("group %s: children must be a mapping of groups", name)
			}
			for _, c := range children {
				child := fmt.Sprint(c.Key)
				if !slices.Contains(g.children, child) {
					g.children = append(g.children, child)
				}
				if err := inv.yamlGroup(child, c.Value, depth+1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("group %s: unknown key %q (want hosts, children or vars)", name, key)
		}
	}
	return nil
}

func yamlVars(v any, where string) ([]ansibleVar, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(yamlv2.MapSlice)
	if !ok {
		return nil, fmt.Errorf("variables must be a mapping, not %T", v)
	}
	var out []ansibleVar
	for _, kv := range m {
		av := ansibleVar{key: fmt.Sprint(kv.Key), where: where}
		switch val := kv.Value.(type) {
		case yamlv2.MapSlice, []any:
			av.complex = true
		case nil:
		default:
			av.value = fmt.Sprint(val)
		}
		out = append(out, av)
	}
	return out, nil
}

// parseAnsibleINI reads the INI inventory format.
func parseAnsibleINI(data []byte) (*ansibleInventory, error) {
	inv := newAnsibleInventory()
	group, kind := "ungrouped", "hosts"
	for i, line := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: section %q has no closing ]", lineNo, line)
			}
			name := line[1 : len(line)-1]
			group, kind = name, "hosts"
			if base, suffix, ok := strings.Cut(name, ":"); ok {
				if suffix != "vars" && suffix != "children" {
					return nil, fmt.Errorf("line %d: section [%s]: want :vars or :children after the group name", lineNo, name)
				}
				group, kind = base, suffix
			}
			inv.group(group)
			continue
		}
		switch kind {
		case "children":
			g := inv.group(group)
			child := strings.Fields(line)[0]
			inv.group(child)
			if !slices.Contains(g.children, child) {
				g.children = append(g.children, child)
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: [%s:vars] wants key=value, not %q", lineNo, group, line)
			}
			inv.group(group).vars = append(inv.group(group).vars, iniVar(strings.TrimSpace(k), unquote(strings.TrimSpace(v)), "group "+group))
		default:
			fields, err := splitArgs(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			host := fields[0]
			var vars []ansibleVar
			if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(port, ":") {
				if _, err := strconv.Atoi(port); err == nil {
					host = h
					vars = append(vars, ansibleVar{key: "ansible_port", value: port})
				}
			}
			for _, f := range fields[1:] {
				if strings.HasPrefix(f, "#") {
					break
				}
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return nil, fmt.Errorf("line %d: host %s: want key=value, not %q", lineNo, host, f)
				}
				vars = append(vars, iniVar(k, v, ""))
			}
			if err := inv.addHost(group, host, vars); err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
		}
	}
	return inv, nil
}

// iniVar is one INI variable. Ansible reads INI values as Python
// literals, so [..] and {..} are a list and a dict.
func iniVar(key, value, where string) ansibleVar {
	complex := strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{")
	return ansibleVar{key: key, value: value, complex: complex, where: where}
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// splitArgs splits a line into words as a POSIX shell would, for
// quoting only (no expansion).
func splitArgs(s string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		in    bool
		quote byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// parents maps each group to the groups that list it as a child.
func (inv *ansibleInventory) parents() map[string][]string {
	p := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(inv.groups)) {
		for _, c := range inv.groups[name].children {
			p[c] = append(p[c], name)
		}
	}
	return p
}

// depth is how far below all a group is (Ansible applies shallower
// groups' vars first).
func depthOf(g string, parents map[string][]string, seen map[string]bool) int {
	if seen[g] {
		return 0 // a cycle: Ansible refuses it; depth only orders vars
	}
	seen[g] = true
	defer delete(seen, g)
	d := 0
	for _, p := range parents[g] {
		d = max(d, depthOf(p, parents, seen)+1)
	}
	return d
}

// groupsOf is every group h is in, directly or through children, all
// included, shallowest first (then by name).
func (inv *ansibleInventory) groupsOf(h string, parents map[string][]string) []string {
	in := map[string]bool{"all": true}
	var walk func(g string)
	walk = func(g string) {
		if in[g] {
			return
		}
		in[g] = true
		for _, p := range parents[g] {
			walk(p)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inv.groups)) {
		if slices.Contains(inv.groups[name].hosts, h) {
			walk(name)
		}
	}
	out := slices.Sorted(maps.Keys(in))
	depth := map[string]int{}
	for _, g := range out {
		depth[g] = depthOf(g, parents, map[string]bool{})
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if a == "all" || b == "all" {
			return boolCmp(b == "all", a == "all")
		}
		return depth[a] - depth[b]
	})
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// nodes converts every host, in the order the inventory first names them.
func (inv *ansibleInventory) nodes() *AnsibleImport {
	out := &AnsibleImport{}
	warned := map[string]bool{}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !warned[msg] {
			warned[msg] = true
			out.Warnings = append(out.Warnings, msg)
		}
	}
	parents := inv.parents()
	for _, name := range inv.hostOrder {
		groups := inv.groupsOf(name, parents)
		vars := map[string]ansibleVar{}
		var order []string
		set := func(v ansibleVar) {
			if _, ok := vars[v.key]; !ok {
				order = append(order, v.key)
			}
			vars[v.key] = v
		}
		for _, g := range groups {
			if grp := inv.groups[g]; grp != nil {
				for _, v := range grp.vars {
					set(v)
				}
			}
		}
		for _, v := range inv.hosts[name].vars {
			set(v)
		}
		n := Node{Name: strings.ToLower(name), Address: name}
		if n.Name != name {
			warn("host %s: node name lowercased to %s", name, n.Name)
		}
		for _, g := range groups {
			if g == "all" || g == "ungrouped" {
				continue
			}
			role := strings.ToLower(g)
			if !IsName(role) {
				warn("group %s: not a drover role name (%s): hosts keep no role for it", g, NamePattern)
				continue
			}
			if role != g {
				warn("group %s: role name lowercased to %s", g, role)
			}
			n.Roles = append(n.Roles, role)
		}
		slices.Sort(n.Roles)
		n.Roles = slices.Compact(n.Roles)
		for _, k := range order {
			v := vars[k]
			if v.where == "" {
				v.where = "host " + name
			}
			mapAnsibleVar(&n, v, vars, warn)
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

// mapAnsibleVar puts one effective variable on n, or warns.
func mapAnsibleVar(n *Node, v ansibleVar, all map[string]ansibleVar, warn func(string, ...any)) {
	preferred := func(modern string) bool { _, ok := all[modern]; return ok }
	switch v.key {
	case "ansible_host":
		n.Address = v.value
	case "ansible_ssh_host":
		if !preferred("ansible_host") {
			n.Address = v.value
		}
	case "ansible_port", "ansible_ssh_port":
		if v.key == "ansible_ssh_port" && preferred("ansible_port") {
			return
		}
		p, err := strconv.Atoi(v.value)
		if err != nil || p < 1 || p > 65535 {
			warn("%s: %s=%q is not a port; not mapped", v.where, v.key, v.value)
			return
		}
		n.Port = p
	case "ansible_user", "ansible_ssh_user":
		if v.key == "ansible_ssh_user" && preferred("ansible_user") {
			return
		}
		n.User = v.value
	case "ansible_ssh_private_key_file", "ansible_private_key_file":
		if v.key == "ansible_private_key_file" && preferred("ansible_ssh_private_key_file") {
			return
		}
		n.IdentityFiles = []string{v.value}
	case "ansible_ssh_common_args", "ansible_ssh_extra_args":
		jump, rest, err := jumpFromSSHArgs(v.value)
		if err != nil {
			warn("%s: %s: %v; not mapped", v.where, v.key, err)
			return
		}
		if len(jump) > 0 {
			n.Jump = append(n.Jump, jump...)
		}
		if len(rest) > 0 {
			warn("%s: %s: %s not mapped (drover reads only ProxyJump from it)", v.where, v.key, strings.Join(rest, " "))
		}
	case "ansible_become", "ansible_become_user", "ansible_become_method", "ansible_become_pass", "ansible_become_password":
		warn("%s: %s not mapped: drover runs privileged steps through sudo -n for any login user but root (passwordless sudo needed)", v.where, v.key)
	case "ansible_connection":
		if v.value != "ssh" && v.value != "smart" && v.value != "paramiko" {
			warn("%s: ansible_connection=%s not mapped: drover reaches every node over SSH", v.where, v.value)
		}
	default:
		switch {
		case v.complex:
			warn("%s: %s is a list or mapping; a label holds text only; not mapped", v.where, v.key)
		case strings.HasPrefix(v.key, "ansible_"):
			warn("%s: %s not mapped (drover has no equivalent)", v.where, v.key)
		case len(v.key) > MaxNameLen || !IsName(v.key):
			warn("%s: %s is not a label key (%s); not mapped", v.where, v.key, NamePattern)
		default:
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[v.key] = v.value
		}
	}
}

// jumpFromSSHArgs finds the jump hosts in ssh options: -J a,b,
// -o ProxyJump=a,b, or -o ProxyCommand="ssh -W %h:%p [-p port] [user@]host".
// rest is every other option.
func jumpFromSSHArgs(args string) (jump []Bastion, rest []string, err error) {
	words, err := splitArgs(args)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var opt string
		switch {
		case w == "-J" && i+1 < len(words):
			i++
			opt = "proxyjump=" + words[i]
		case strings.HasPrefix(w, "-J"):
			opt = "proxyjump=" + w[2:]
		case w == "-o" && i+1 < len(words):
			i++
			opt = words[i]
		case strings.HasPrefix(w, "-o"):
			opt = w[2:]
		default:
			rest = append(rest, w)
			continue
		}
		key, val, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			key, val, _ = strings.Cut(opt, " ")
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "proxyjump":
			for _, spec := range strings.Split(val, ",") {
				b, err := ParseJumpHost(strings.TrimSpace(spec))
				if err != nil {
					return nil, nil, err
				}
				jump = append(jump, b)
			}
		case "proxycommand":
			b, ok := proxyCommandJump(val)
			if !ok {
				rest = append(rest, "-o "+opt)
				continue
			}
			jump = append(jump, b)
		default:
			rest = append(rest, "-o "+opt)
		}
	}
	return jump, rest, nil
}

// proxyCommandJump reads the one ProxyCommand that is a jump host:
// ssh -W %h:%p, with -q, -p PORT, -l USER or -i KEY, and [user@]host.
func proxyCommandJump(cmd string) (Bastion, bool) {
	words, err := splitArgs(cmd)
	if err != nil || len(words) < 3 || words[0] != "ssh" {
		return Bastion{}, false
	}
	var b Bastion
	forward := false
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-W" && i+1 < len(words) && words[i+1] == "%h:%p":
			forward = true
			i++
		case w == "-q":
		case (w == "-p" || w == "-l" || w == "-i") && i+1 < len(words):
			i++
			switch w {
			case "-p":
				p, err := strconv.Atoi(words[i])
				if err != nil {
					return Bastion{}, false
				}
				b.Port = p
			case "-l":
				b.User = words[i]
			case "-i":
				b.IdentityFiles = []string{words[i]}
			}
		case strings.HasPrefix(w, "-"):
			return Bastion{}, false
		case b.Address == "":
			jb, err := ParseJumpHost(w)
			if err != nil {
				return Bastion{}, false
			}
			b.Address = jb.Address
			if jb.User != "" {
				b.User = jb.User
			}
			if jb.Port != 0 {
				b.Port = jb.Port
			}
		default:
			return Bastion{}, false
		}
	}
	return b, forward && b.Address != ""
}

// ParseJumpHost reads a jump host as ProxyJump and ssh -J write it:
// [user@]host[:port], or an ssh:// URI; host may be an ssh_config alias.
func ParseJumpHost(s string) (Bastion, error) {
	s = strings.TrimPrefix(s, "ssh://")
	var b Bastion
	if at := strings.LastIndex(s, "@"); at >= 0 {
		b.User, s = s[:at], s[at+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host = strings.Trim(s, "[]")
	} else {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Bastion{}, fmt.Errorf("jump host %q: bad port %q", s, port)
		}
		b.Port = p
	}
	if host == "" {
		return Bastion{}, fmt.Errorf("jump host %q has no host", s)
	}
	b.Address = host
	return b, nil
}

// looksLikeDroverInventory tells an inventoryFile in drover's format
// (a nodes: list) from an Ansible YAML inventory.
func looksLikeDroverInventory(data []byte) bool {
	var top yamlv2.MapSlice
	if err := yamlv2.Unmarshal(data, &top); err != nil {
		return true // let the strict parse say what is wrong
	}
	for _, kv := range top {
		if fmt.Sprint(kv.Key) == "nodes" {
			return true
		}
	}
	return len(bytes.TrimSpace(data)) == 0
}

// parseInventoryFile reads an inventoryFile: drover's own format (a
// nodes: list), or an Ansible YAML inventory, whose warnings become
// warning problems (path "ansible").
func parseInventoryFile(data []byte) (*Inventory, Problems, error) {
	if looksLikeDroverInventory(data) {
		return ParseInventory(data)
	}
	imp, err := ImportAnsibleYAML(data)
	if err != nil {
		return nil, nil, err
	}
	var ps Problems
	for _, w := range imp.Warnings {
		ps = append(ps, Problem{Path: "ansible", Message: w, Severity: SeverityWarning})
	}
	return &Inventory{Nodes: imp.Nodes}, ps, nil
}

// ImportAnsibleFile is ImportAnsible for the file at path; errors name it.
func ImportAnsibleFile(path string) (*AnsibleImport, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	imp, err := ImportAnsible(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return imp, nil
}
