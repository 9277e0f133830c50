package manifests

import (
	"reflect"
	"testing"
)

// TestParseSSHAccess: the per-node and per-role SSH fields, jump chains
// and ssh.configFile parse strictly (a node's embedded fields are known
// to the strict checker) and keep what was written.
func TestParseSSHAccess(t *testing.T) {
	c, err := Parse([]byte(`apiVersion: drover/v1
kind: Cluster
metadata: {name: ssh}
spec:
  ssh:
    configFile: ~/.ssh/drover_config
    jump: [{address: outer, user: ops, identityFiles: [~/.ssh/outer]}, {address: inner, port: 2200, knownHostsFile: ~/.ssh/inner_hosts}]
    roles:
      edge: {bastion: {address: edge-gw}, identityFiles: [~/.ssh/edge]}
  nodes:
    - {name: e1, address: e1, roles: [edge]}
    - {name: n1, address: web-1, identityFiles: [~/.ssh/n1], knownHostsFile: ~/.ssh/n1_hosts, jump: [{address: j}]}
  components: []
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.decodeProblems) > 0 {
		t.Fatalf("problems: %v", c.decodeProblems)
	}
	s := c.Spec.SSH
	if s.ConfigFile != "~/.ssh/drover_config" || len(s.Jump) != 2 || s.Jump[1].Port != 2200 || s.Roles["edge"].Bastion.Address != "edge-gw" {
		t.Errorf("ssh: %+v", s)
	}
	n1 := c.Spec.Nodes[1]
	want := Access{IdentityFiles: []string{"~/.ssh/n1"}, KnownHostsFile: "~/.ssh/n1_hosts", Jump: []Bastion{{Address: "j"}}}
	if !reflect.DeepEqual(n1.Access, want) {
		t.Errorf("node access %+v, want %+v", n1.Access, want)
	}
	c.SetDefaults()
	if ps := c.Validate(); ps.HasErrors() {
		t.Errorf("problems: %v", ps)
	}

	if _, err := Parse([]byte("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  nodes: [{name: a, address: a, jumpp: []}]\n")); err == nil {
		t.Error("a misspelt node field must be refused")
	}
}
