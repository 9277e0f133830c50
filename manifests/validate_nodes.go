package manifests

import (
	"net"
	"reflect"
	"strconv"
)

// nodes checks where nodes come from and each node's fields.
func (v *validator) nodes() {
	s := &v.c.Spec
	prefix := "spec.nodes"
	if v.c.nodesFromInventory {
		prefix = s.InventoryFile + ":nodes"
	}
	switch {
	case len(s.Nodes) > 0 && s.InventoryFile != "" && !v.c.nodesFromInventory:
		v.errorf("spec.inventoryFile", "set either spec.nodes or spec.inventoryFile, not both")
	case len(s.Nodes) == 0 && s.InventoryFile != "":
		v.errorf("spec.inventoryFile", "%s lists no nodes", s.InventoryFile)
	case len(s.Nodes) == 0:
		v.errorf("spec.nodes", "at least one node is required (listed here or in spec.inventoryFile)")
	}
	names := map[string]string{} // name -> path of the node that has it
	addrs := map[string]string{} // host:port -> path
	for i := range s.Nodes {
		n := &s.Nodes[i]
		p := at(prefix, i)
		v.nameMax(p+".name", n.Name, MaxNodeNameLen)
		if first, dup := names[n.Name]; dup && n.Name != "" {
			v.errorf(p+".name", "duplicate name %q (also %s)", n.Name, first)
		} else {
			names[n.Name] = p
		}
		if n.Address == "" {
			v.errorf(p+".address", "required")
		} else if !isHost(n.Address) {
			v.host(p+".address", n.Address)
		} else {
			port := n.Port
			if port == 0 {
				port = s.SSH.Port
			}
			if port == 0 {
				port = DefaultSSHPort
			}
			key := net.JoinHostPort(hostKey(n.Address), strconv.Itoa(port))
			if first, dup := addrs[key]; dup {
				v.errorf(p+".address", "duplicate address %s (also %s)", key, first)
			} else {
				addrs[key] = p
			}
		}
		v.port(p+".port", n.Port, true)
		v.account(p+".user", n.User, "user")
		for j, r := range n.Roles {
			v.name(at(p+".roles", j), r)
		}
		v.labelKeys(p+".labels", n.Labels)
		v.access(p, n.Access)
		v.roleAccess(p, n)
	}
}

// roleAccess refuses a node whose roles give it different SSH settings
// (spec.ssh.roles) unless the node sets its own: which would win is not
// something to guess.
func (v *validator) roleAccess(p string, n *Node) {
	if len(n.IdentityFiles) > 0 && n.KnownHostsFile != "" && n.JumpHosts() != nil {
		return
	}
	var first string
	for _, r := range n.Roles {
		a, ok := v.c.Spec.SSH.Roles[r]
		if !ok {
			continue
		}
		if first == "" {
			first = r
			continue
		}
		if !reflect.DeepEqual(a, v.c.Spec.SSH.Roles[first]) {
			v.errorf(p+".roles", "roles %s and %s set different spec.ssh.roles settings; give the node its own identityFiles, knownHostsFile and bastion or jump", first, r)
			return
		}
	}
}
