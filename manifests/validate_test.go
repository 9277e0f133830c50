package manifests

import (
	"slices"
	"strings"
	"testing"
)

// baseManifest is valid: every case below breaks one rule of it.
const baseManifest = `
apiVersion: drover/v1
kind: Cluster
metadata: {name: test}
spec:
  nodes:
    - {name: m1, address: 10.0.0.1, roles: [master]}
    - {name: m2, address: 10.0.0.2, roles: [master]}
    - {name: m3, address: 10.0.0.3, roles: [master]}
    - {name: a1, address: 10.0.1.1, roles: [agent], labels: {zone: a}}
  components:
    - name: zk
      version: 3.8.0
      roles: [master]
      quorum: true
      artifact: {path: zk.tar.gz, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
        - path: conf/myid
          template: "{{ add .Node.Index.master 1 }}\n"
      service: {exec: "{{ .Dir }}/bin/zk-run"}
      health: {tcp: {port: 2181}}
    - name: exporter
      version: 1.8.2
      artifact: {url: "https://example.com/ne.tar.gz", sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}
      service: {exec: "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100"}
      health: {http: {port: 9100, path: /metrics}}
      dependsOn: [zk]
  rollout:
    roleOrder: [master, agent]
`

func parseBase(t *testing.T) *Cluster {
	t.Helper()
	c, err := Parse([]byte(baseManifest))
	if err != nil {
		t.Fatalf("parse base: %v", err)
	}
	return c
}

func problemStrings(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestBaseManifestIsValid(t *testing.T) {
	c := parseBase(t)
	c.SetDefaults()
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatalf("base manifest has problems:\n%s", strings.Join(problemStrings(ps), "\n"))
	}
}

// zk and exporter are the base's components; node(i) its nodes.
func zk(c *Cluster) *Component       { return &c.Spec.Components[0] }
func exporter(c *Cluster) *Component { return &c.Spec.Components[1] }
func node(c *Cluster, i int) *Node   { return &c.Spec.Nodes[i] }

// TestValidateRules breaks one rule at a time and expects exactly these
// problems, in this order: nothing missing and no noise.
func TestValidateRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Cluster)
		want   []string
	}{
		// header
		{"apiVersion", func(c *Cluster) { c.APIVersion = "drover/v2" },
			[]string{`apiVersion: must be drover/v1, not "drover/v2"`}},
		{"kind", func(c *Cluster) { c.Kind = "" },
			[]string{`kind: must be Cluster, not ""`}},
		{"metadata name missing", func(c *Cluster) { c.Metadata.Name = "" },
			[]string{`metadata.name: required`}},
		{"metadata name pattern", func(c *Cluster) { c.Metadata.Name = "Prod_East" },
			[]string{`metadata.name: "Prod_East" must match [a-z0-9][a-z0-9._-]*`}},
		{"metadata name too long", func(c *Cluster) { c.Metadata.Name = strings.Repeat("a", 64) },
			[]string{`metadata.name: "` + strings.Repeat("a", 64) + `" is longer than 63 characters`}},
		{"metadata label key", func(c *Cluster) { c.Metadata.Labels = map[string]string{"Env": "x", "ok": "y"} },
			[]string{`metadata.labels: key "Env" must match [a-z0-9][a-z0-9._-]*`}},

		// spec scalars
		{"installRoot relative", func(c *Cluster) { c.Spec.InstallRoot = "opt/drover" },
			[]string{`spec.installRoot: "opt/drover" must be an absolute path`}},
		{"installRoot root", func(c *Cluster) { c.Spec.InstallRoot = "/" },
			[]string{`spec.installRoot: must not be /`}},
		{"installRoot root unclean", func(c *Cluster) { c.Spec.InstallRoot = "//." },
			[]string{`spec.installRoot: must not be /`}},
		{"installRoot unclean", func(c *Cluster) { c.Spec.InstallRoot = "/opt/drover/" },
			[]string{`spec.installRoot: "/opt/drover/" must be a clean path (/opt/drover)`}},
		{"installRoot dotdot", func(c *Cluster) { c.Spec.InstallRoot = "/opt/../drover" },
			[]string{`spec.installRoot: "/opt/../drover" must be a clean path (/drover)`}},
		{"installRoot characters", func(c *Cluster) { c.Spec.InstallRoot = "/opt/my drover%i" },
			[]string{`spec.installRoot: "/opt/my drover%i" may contain only letters, digits, '.', '_', '-' and '/'`}},
		{"probeInterval not a duration", func(c *Cluster) { c.Spec.ProbeInterval = "3x" },
			[]string{`spec.probeInterval: "3x" is not a duration`}},
		{"probeInterval zero", func(c *Cluster) { c.Spec.ProbeInterval = "0s" },
			[]string{`spec.probeInterval: "0s" is not a positive duration`}},
		{"probeInterval negative", func(c *Cluster) { c.Spec.ProbeInterval = "-5s" },
			[]string{`spec.probeInterval: "-5s" is not a positive duration`}},

		// ssh
		{"ssh user", func(c *Cluster) { c.Spec.SSH.User = "Core User" },
			[]string{`spec.ssh.user: "Core User" is not a valid user name`}},
		{"ssh port", func(c *Cluster) { c.Spec.SSH.Port = 70000; node(c, 0).Port = 22 },
			[]string{`spec.ssh.port: must be between 1 and 65535, not 70000`}},
		{"ssh identity file empty", func(c *Cluster) { c.Spec.SSH.IdentityFiles = []string{"~/.ssh/id", ""} },
			[]string{`spec.ssh.identityFiles[1]: required`}},
		{"ssh connectTimeout", func(c *Cluster) { c.Spec.SSH.ConnectTimeout = "ten seconds" },
			[]string{`spec.ssh.connectTimeout: "ten seconds" is not a duration`}},
		{"ssh concurrency negative", func(c *Cluster) { c.Spec.SSH.Concurrency = -1 },
			[]string{`spec.ssh.concurrency: must be between 1 and 10000, not -1`}},
		{"ssh concurrency huge", func(c *Cluster) { c.Spec.SSH.Concurrency = 10001 },
			[]string{`spec.ssh.concurrency: must be between 1 and 10000, not 10001`}},
		{"jump host fields", func(c *Cluster) {
			c.Spec.SSH.Jump = []Bastion{{Address: "j1"}, {Address: "j 2", Port: 70000, User: "Bad User", IdentityFiles: []string{""}}}
		}, []string{
			`spec.ssh.jump[1].address: "j 2" is not an IP address or host name`,
			`spec.ssh.jump[1].port: must be between 1 and 65535, not 70000`,
			`spec.ssh.jump[1].user: "Bad User" is not a valid user name`,
			`spec.ssh.jump[1].identityFiles[0]: required`,
		}},
		{"bastion and jump both", func(c *Cluster) {
			c.Spec.SSH.Bastion = &Bastion{Address: "b"}
			c.Spec.SSH.Jump = []Bastion{{Address: "j"}}
		}, []string{`spec.ssh.jump: set bastion or jump, not both`}},
		{"node access", func(c *Cluster) {
			node(c, 1).Jump = []Bastion{{}}
			node(c, 1).IdentityFiles = []string{""}
		}, []string{`spec.nodes[1].identityFiles[0]: required`, `spec.nodes[1].jump[0].address: required`}},
		{"role access", func(c *Cluster) {
			c.Spec.SSH.Roles = map[string]Access{"agent": {Bastion: &Bastion{Address: "x_y"}}, "nobody": {}}
		}, []string{
			`spec.ssh.roles.agent.bastion.address: "x_y" is not an IP address or host name`,
			`warning: spec.ssh.roles.nobody: no node has role nobody`,
		}},
		{"roles with different access", func(c *Cluster) {
			c.Spec.SSH.Roles = map[string]Access{"agent": {Bastion: &Bastion{Address: "b1"}}, "master": {Bastion: &Bastion{Address: "b2"}}}
			node(c, 3).Roles = []string{"agent", "master"}
		}, []string{`spec.nodes[3].roles: roles agent and master set different spec.ssh.roles settings; give the node its own identityFiles, knownHostsFile and bastion or jump`,
			`warning: spec.components[0].quorum: 4 members tolerate no more failures than 3`}},
		{"bastion address missing", func(c *Cluster) { c.Spec.SSH.Bastion = &Bastion{User: "core"} },
			[]string{`spec.ssh.bastion.address: required`}},
		{"bastion address bad", func(c *Cluster) { c.Spec.SSH.Bastion = &Bastion{Address: "jump:22"} },
			[]string{`spec.ssh.bastion.address: "jump:22" is not an IP address or host name`}},
		{"bastion port and user", func(c *Cluster) { c.Spec.SSH.Bastion = &Bastion{Address: "jump.example.com", Port: -2, User: "-x"} },
			[]string{`spec.ssh.bastion.port: must be between 1 and 65535, not -2`, `spec.ssh.bastion.user: "-x" is not a valid user name`}},

		// nodes
		{"no nodes", func(c *Cluster) { c.Spec.Nodes = nil },
			// and nothing about roles or components matching no node: one cause, one message
			[]string{`spec.nodes: at least one node is required (listed here or in spec.inventoryFile)`}},
		{"nodes and inventoryFile", func(c *Cluster) { c.Spec.InventoryFile = "hosts.yaml" },
			[]string{`spec.inventoryFile: set either spec.nodes or spec.inventoryFile, not both`}},
		{"node name missing", func(c *Cluster) { node(c, 3).Name = "" },
			[]string{`spec.nodes[3].name: required`}},
		{"node name pattern", func(c *Cluster) { node(c, 3).Name = "A1" },
			[]string{`spec.nodes[3].name: "A1" must match [a-z0-9][a-z0-9._-]*`}},
		{"node name may be a long FQDN", func(c *Cluster) { node(c, 3).Name = strings.Repeat("a", 100) + ".example.com" },
			nil},
		{"node name too long", func(c *Cluster) { node(c, 3).Name = strings.Repeat("a", 254) },
			[]string{`spec.nodes[3].name: "` + strings.Repeat("a", 254) + `" is longer than 253 characters`}},
		{"duplicate node name", func(c *Cluster) { node(c, 2).Name = "m1" },
			[]string{`spec.nodes[2].name: duplicate name "m1" (also spec.nodes[0])`}},
		{"address missing", func(c *Cluster) { node(c, 3).Address = "" },
			[]string{`spec.nodes[3].address: required`}},
		{"address with port", func(c *Cluster) { node(c, 3).Address = "10.0.1.1:22" },
			[]string{`spec.nodes[3].address: "10.0.1.1:22" is not an IP address or host name`}},
		{"address with space", func(c *Cluster) { node(c, 3).Address = "a1 -oProxyCommand=x" },
			[]string{`spec.nodes[3].address: "a1 -oProxyCommand=x" is not an IP address or host name`}},
		{"duplicate address", func(c *Cluster) { node(c, 3).Address = "10.0.0.1" },
			[]string{`spec.nodes[3].address: duplicate address 10.0.0.1:22 (also spec.nodes[0])`}},
		{"duplicate address spelt differently", func(c *Cluster) {
			node(c, 0).Address = "M1.Example.com."
			node(c, 3).Address = "m1.example.com"
		}, []string{`spec.nodes[3].address: duplicate address m1.example.com:22 (also spec.nodes[0])`}},
		{"duplicate IPv6 address spelt differently", func(c *Cluster) {
			node(c, 0).Address = "fd00::1"
			node(c, 3).Address = "fd00:0::0:1"
		}, []string{`spec.nodes[3].address: duplicate address [fd00::1]:22 (also spec.nodes[0])`}},
		{"same address on another port is fine", func(c *Cluster) {
			node(c, 3).Address = "10.0.0.1"
			node(c, 3).Port = 2222
		}, nil},
		{"node port", func(c *Cluster) { node(c, 3).Port = 65536 },
			[]string{`spec.nodes[3].port: must be between 1 and 65535, not 65536`}},
		{"node user", func(c *Cluster) { node(c, 3).User = "root;reboot" },
			[]string{`spec.nodes[3].user: "root;reboot" is not a valid user name`}},
		{"numeric and underscore users are fine", func(c *Cluster) { node(c, 3).User = "1000"; node(c, 2).User = "_svc-x.y$" }, nil},
		{"node role name", func(c *Cluster) { node(c, 3).Roles = []string{"agent", "Public Agent"} },
			[]string{`spec.nodes[3].roles[1]: "Public Agent" must match [a-z0-9][a-z0-9._-]*`}},
		{"node label key", func(c *Cluster) { node(c, 3).Labels = map[string]string{"topology/zone": "a"} },
			[]string{`spec.nodes[3].labels: key "topology/zone" must match [a-z0-9][a-z0-9._-]*`}},

		// components
		{"component name", func(c *Cluster) { exporter(c).Name = "node_Exporter" },
			[]string{`spec.components[1].name: "node_Exporter" must match [a-z0-9][a-z0-9._-]*`}},
		{"duplicate component", func(c *Cluster) { exporter(c).Name = "zk"; exporter(c).DependsOn = nil },
			[]string{`spec.components[1].name: duplicate name "zk" (also spec.components[0])`}},
		{"state", func(c *Cluster) { exporter(c).State = "gone" },
			[]string{`spec.components[1].state: must be present or absent, not "gone"`}},
		{"version missing", func(c *Cluster) { zk(c).Version = "" },
			[]string{`spec.components[0].version: required`}},
		{"version escapes", func(c *Cluster) { zk(c).Version = "../../etc" },
			[]string{`spec.components[0].version: "../../etc" must match [A-Za-z0-9][A-Za-z0-9._+-]*`}},
		{"version with slash", func(c *Cluster) { zk(c).Version = "3.8/0" },
			[]string{`spec.components[0].version: "3.8/0" must match [A-Za-z0-9][A-Za-z0-9._+-]*`}},
		{"version too long", func(c *Cluster) { zk(c).Version = strings.Repeat("1", 129) },
			[]string{`spec.components[0].version: "` + strings.Repeat("1", 129) + `" is longer than 128 characters`}},
		{"semver build version is fine", func(c *Cluster) { zk(c).Version = "3.8.0-RC1+build.7" }, nil},
		{"component role name", func(c *Cluster) { zk(c).Roles = []string{"Master"} },
			[]string{`spec.components[0].roles[0]: "Master" must match [a-z0-9][a-z0-9._-]*`,
				`spec.components[0].roles: matches no node`}},
		{"selector key", func(c *Cluster) { exporter(c).Selector = map[string]string{"Zone": "a"} },
			[]string{`spec.components[1].selector: key "Zone" must match [a-z0-9][a-z0-9._-]*`,
				`spec.components[1].selector: matches no node`}},
		{"neither artifact nor files", func(c *Cluster) { exporter(c).Artifact = nil },
			[]string{`spec.components[1]: needs an artifact or files`}},
		{"files only is fine", func(c *Cluster) { zk(c).Artifact = nil }, nil},

		// artifact
		{"artifact path and url", func(c *Cluster) { zk(c).Artifact.URL = "https://example.com/zk.tar.gz" },
			[]string{`spec.components[0].artifact: set path or url, not both`}},
		{"artifact neither path nor url", func(c *Cluster) { zk(c).Artifact.Path = "" },
			[]string{`spec.components[0].artifact: set path or url`}},
		{"artifact url scheme", func(c *Cluster) { exporter(c).Artifact.URL = "ftp://example.com/ne.tar.gz" },
			[]string{`spec.components[1].artifact.url: "ftp://example.com/ne.tar.gz" must be an http or https URL`}},
		{"artifact url without host", func(c *Cluster) { exporter(c).Artifact.URL = "https:///ne.tar.gz" },
			[]string{`spec.components[1].artifact.url: "https:///ne.tar.gz" must be an http or https URL`}},
		{"artifact path control", func(c *Cluster) { zk(c).Artifact.Path = "zk\n.tar.gz" },
			[]string{`spec.components[0].artifact.path: "zk\n.tar.gz" must not contain control characters`}},
		{"sha256 short", func(c *Cluster) { exporter(c).Artifact.SHA256 = "abc" },
			[]string{`spec.components[1].artifact.sha256: must be 64 hex characters`}},
		{"sha256 not hex", func(c *Cluster) { exporter(c).Artifact.SHA256 = strings.Repeat("g", 64) },
			[]string{`spec.components[1].artifact.sha256: must be 64 hex characters`}},
		{"sha256 missing", func(c *Cluster) { exporter(c).Artifact.SHA256 = "" },
			[]string{`spec.components[1].artifact.sha256: must be 64 hex characters`}},

		// files
		{"file path missing", func(c *Cluster) { zk(c).Files[0].Path = "" },
			[]string{`spec.components[0].files[0].path: required`}},
		{"file path escapes", func(c *Cluster) { zk(c).Files[0].Path = "conf/../../myid" },
			[]string{`spec.components[0].files[0].path: "conf/../../myid" escapes the component directory`}},
		{"file path is the directory", func(c *Cluster) { zk(c).Files[0].Path = "conf/.." },
			[]string{`spec.components[0].files[0].path: "conf/.." must name a file`}},
		{"file path is root", func(c *Cluster) { zk(c).Files[0].Path = "/" },
			[]string{`spec.components[0].files[0].path: "/" must name a file`}},
		{"file path reserved", func(c *Cluster) { zk(c).Files[0].Path = "./.complete" },
			[]string{`spec.components[0].files[0].path: "./.complete" is inside .complete, which drover keeps for itself in the version directory`}},
		{"file path control", func(c *Cluster) { zk(c).Files[0].Path = "conf/my\tid" },
			[]string{`spec.components[0].files[0].path: "conf/my\tid" must not contain control characters`}},
		{"absolute file path is fine", func(c *Cluster) { zk(c).Files[0].Path = "/etc/zookeeper/myid" }, nil},
		{"absolute file path inside installRoot", func(c *Cluster) { zk(c).Files[0].Path = "/opt/drover/receipts/zk.json" },
			[]string{`spec.components[0].files[0].path: "/opt/drover/receipts/zk.json" is inside installRoot /opt/drover, which drover manages; give a path relative to the component directory`}},
		{"duplicate file path", func(c *Cluster) {
			zk(c).Files = append(zk(c).Files, File{Path: "conf/./myid", Template: "x"})
		}, []string{`spec.components[0].files[1].path: duplicate path "conf/./myid" (also spec.components[0].files[0])`}},
		{"absolute path written by two components on one node", func(c *Cluster) {
			zk(c).Files[0].Path = "/etc/cluster.conf"
			exporter(c).Files = []File{{Path: "/etc/cluster.conf", Template: "x"}}
		}, []string{`spec.components[1].files[0].path: "/etc/cluster.conf" is also written by spec.components[0].files[0].path on node m1`}},
		{"absolute path written by two components on different nodes is fine", func(c *Cluster) {
			zk(c).Files[0].Path = "/etc/cluster.conf"
			exporter(c).Roles = []string{"agent"}
			exporter(c).Files = []File{{Path: "/etc/cluster.conf", Template: "x"}}
		}, nil},
		{"file mode not octal", func(c *Cluster) { zk(c).Files[0].Mode = "0999" },
			[]string{`spec.components[0].files[0].mode: "0999" must be an octal file mode no greater than 07777, such as 0644`}},
		{"file mode too large", func(c *Cluster) { zk(c).Files[0].Mode = "17777" },
			[]string{`spec.components[0].files[0].mode: "17777" must be an octal file mode no greater than 07777, such as 0644`}},
		{"file mode with setuid is fine", func(c *Cluster) { zk(c).Files[0].Mode = "4755" }, nil},
		{"template does not parse", func(c *Cluster) { zk(c).Files[0].Template = "{{ .Node.Name " },
			[]string{`spec.components[0].files[0].template: template: conf/myid:1: unclosed action`}},
		{"template calls an unknown function", func(c *Cluster) { zk(c).Files[0].Template = `{{ nodesWithRol "master" }}` },
			[]string{`spec.components[0].files[0].template: template: conf/myid:1: function "nodesWithRol" not defined`}},
		{"template fails for a node", func(c *Cluster) {
			zk(c).Roles = nil // now on a1 too, which has no master index
		}, []string{`warning: spec.components[0].quorum: 4 members tolerate no more failures than 3`,
			`spec.components[0].files[0].template: node a1: template: conf/myid:1:12: executing "conf/myid" at <.Node.Index.master>: map has no entry for key "master"`}},
		{"template names an unknown field", func(c *Cluster) { zk(c).Files[0].Template = "{{ .Node.Hostname }}" },
			[]string{`spec.components[0].files[0].template: node m1: template: conf/myid:1:8: executing "conf/myid" at <.Node.Hostname>: can't evaluate field Hostname in type manifests.NodeInfo`}},

		// service
		{"service exec missing", func(c *Cluster) { zk(c).Service.Exec = "  " },
			[]string{`spec.components[0].service.exec: required`}},
		{"service exec does not parse", func(c *Cluster) { zk(c).Service.Exec = "{{ .Dir }/bin/zk-run" },
			[]string{`spec.components[0].service.exec: template: exec:1: unexpected "}" in operand`}},
		{"service exec fails for a node", func(c *Cluster) { zk(c).Service.Exec = "{{ .Dir }}/bin/zk-run {{ .Node.Labels.zone }}" },
			[]string{`spec.components[0].service.exec: node m1: template: service.exec:1:30: executing "service.exec" at <.Node.Labels.zone>: map has no entry for key "zone"`}},
		{"service exec renders a newline", func(c *Cluster) { zk(c).Service.Exec = "{{ .Dir }}/bin/zk-run\nExecStartPre=/bin/evil" },
			[]string{`spec.components[0].service.exec: node m1: must render to one line without control characters`}},
		{"service user and group", func(c *Cluster) { zk(c).Service.User = "Zoo Keeper"; zk(c).Service.Group = "a:b" },
			[]string{`spec.components[0].service.user: "Zoo Keeper" is not a valid user name`,
				`spec.components[0].service.group: "a:b" is not a valid group name`}},
		{"service restart", func(c *Cluster) { zk(c).Service.Restart = "sometimes" },
			[]string{`spec.components[0].service.restart: must be no, on-success, on-failure, on-abnormal, on-watchdog, on-abort or always, not "sometimes"`}},
		{"service environment", func(c *Cluster) {
			zk(c).Service.Environment = map[string]string{"JAVA_HOME": "/usr/lib/jvm", "1BAD": "x", "OPTS": "a\nb", "with-dash": "y"}
		}, []string{`spec.components[0].service.environment: "1BAD" is not a valid variable name`,
			`spec.components[0].service.environment: value of OPTS must not contain control characters`,
			`spec.components[0].service.environment: "with-dash" is not a valid variable name`}},

		// health
		{"leader check is fine", func(c *Cluster) {
			zk(c).Leader = &Health{Exec: &ExecCheck{Command: []string{"/opt/zk-mode", "leader"}}}
		}, nil},
		{"leader of a component without quorum", func(c *Cluster) {
			exporter(c).Leader = &Health{Exec: &ExecCheck{Command: []string{"true"}}}
		}, []string{`spec.components[1].leader: only a quorum component has a leader (set quorum: true)`}},
		{"leader check over tcp", func(c *Cluster) { zk(c).Leader = &Health{TCP: &TCPCheck{Port: 2181}} },
			[]string{`spec.components[0].leader: set exec: a leader check runs a command on the node`}},
		{"leader check without a command", func(c *Cluster) {
			zk(c).Leader = &Health{Exec: &ExecCheck{}, Timeout: "-1s"}
		}, []string{`spec.components[0].leader.exec.command: required`, `spec.components[0].leader.timeout: "-1s" is not a positive duration`}},
		{"health with no check", func(c *Cluster) { zk(c).Health.TCP = nil },
			[]string{`spec.components[0].health: set one of exec, http or tcp`}},
		{"health with two checks", func(c *Cluster) { zk(c).Health.HTTP = &HTTPCheck{Port: 8080} },
			[]string{`spec.components[0].health: set only one of exec, http or tcp`}},
		// lifecycle (issue 17)
		{"artifact stripComponents out of range", func(c *Cluster) { zk(c).Artifact.StripComponents = 9 },
			[]string{`spec.components[0].artifact.stripComponents: must be between 0 and 8, not 9`}},
		{"artifact stripComponents negative", func(c *Cluster) { zk(c).Artifact.StripComponents = -1 },
			[]string{`spec.components[0].artifact.stripComponents: must be between 0 and 8, not -1`}},
		{"artifact stripComponents fine", func(c *Cluster) { zk(c).Artifact.StripComponents = 1 }, nil},
		{"templated tcp host renders per node", func(c *Cluster) { zk(c).Health.TCP.Host = "{{ .Node.Address }}" }, nil},
		{"templated tcp host renders a bad host", func(c *Cluster) { zk(c).Health.TCP.Host = "{{ .Node.Name }} x" },
			[]string{`spec.components[0].health.tcp.host: node m1: renders "m1 x" is not an IP address or host name`}},
		{"templated check fails for a node", func(c *Cluster) {
			zk(c).Health = &Health{Exec: &ExecCheck{Command: []string{"{{ .Dir }}/bin/ok", "{{ .Node.Labels.zone }}"}}, Timeout: "5s"}
		}, []string{`spec.components[0].health.exec.command[1]: node m1: template: spec.components[0].health.exec.command[1]:1:8: executing "spec.components[0].health.exec.command[1]" at <.Node.Labels.zone>: map has no entry for key "zone"`}},
		{"templated check does not parse", func(c *Cluster) { exporter(c).Health.HTTP.Path = "/{{ .Node.Name" },
			[]string{`spec.components[1].health.http.path: template: spec.components[1].health.http.path:1: unclosed action`}},
		{"http statuses, header and body", func(c *Cluster) {
			h := exporter(c).Health.HTTP
			h.ExpectStatuses = []int{200, 99}
			h.Headers = map[string]string{"Bad Name": "x", "X-Ok": "a\x01"}
			h.BodyRegexp = "(("
			h.BodyJSON = map[string]string{"": "true"}
		}, []string{`spec.components[1].health.http.expectStatuses[1]: must be between 100 and 599, not 99`,
			`spec.components[1].health.http.headers: "Bad Name" is not an HTTP header name`,
			`spec.components[1].health.http.headers.X-Ok: must not contain control characters`,
			`spec.components[1].health.http.bodyRegexp: error parsing regexp: missing closing ): ` + "`((`",
			`spec.components[1].health.http.bodyJSON: a field name must not be empty`}},
		{"hooks", func(c *Cluster) {
			zk(c).Hooks = &Hooks{PreStop: &Hook{Timeout: "5"}, PostStart: &Hook{Command: []string{""}, Timeout: "1s"},
				PreRemove: &Hook{Command: []string{"{{ .Dir }}/bin/x", "{{ .Node.Labels.zone }}"}, Timeout: "1s"}}
		}, []string{`spec.components[0].hooks.preStop.command: required`,
			`spec.components[0].hooks.preStop.timeout: "5" is not a duration`,
			`spec.components[0].hooks.postStart.command[0]: the program must not be empty`,
			`spec.components[0].hooks.preRemove.command[1]: node m1: template: spec.components[0].hooks.preRemove.command[1]:1:8: executing "spec.components[0].hooks.preRemove.command[1]" at <.Node.Labels.zone>: map has no entry for key "zone"`}},
		{"membership hooks", func(c *Cluster) {
			exporter(c).Hooks = &Hooks{PreJoin: &Hook{Command: []string{"true"}, Timeout: "1s"}}
			zk(c).Hooks = &Hooks{PreJoin: &Hook{Command: []string{"{{ .Member.Nope }}"}, Timeout: "1s"},
				PostLeave: &Hook{Timeout: "1s"}}
		}, []string{`spec.components[0].hooks.postLeave.command: required`,
			`spec.components[1].hooks.preJoin: preJoin changes a quorum group's membership, and the component is not one (set quorum: true)`,
			`spec.components[0].hooks.preJoin.command[0]: node m1: template: spec.components[0].hooks.preJoin.command[0]:1:10: executing "spec.components[0].hooks.preJoin.command[0]" at <.Member.Nope>: can't evaluate field Nope in type manifests.NodeInfo`}},
		{"a template that fails only while a member joins", func(c *Cluster) {
			zk(c).Files[0].Template = "{{ if .Component.Joining }}{{ .Node.Labels.zone }}{{ end }}"
		}, []string{`spec.components[0].files[0].template: node m1: template: conf/myid:1:35: executing "conf/myid" at <.Node.Labels.zone>: map has no entry for key "zone" (rendered as when m1 joins the group)`}},
		{"preStop without a service", func(c *Cluster) {
			zk(c).Service = nil
			zk(c).Hooks = &Hooks{PreStop: &Hook{Command: []string{"true"}, Timeout: "1s"}}
		}, []string{`spec.components[0].hooks.preStop: preStop runs around the service, and the component has none`}},
		{"file onChange", func(c *Cluster) { zk(c).Files[0].OnChange = "sometimes" },
			[]string{`spec.components[0].files[0].onChange: must be restart, reload or none, not "sometimes"`}},
		{"file onChange reload without service.reload", func(c *Cluster) { zk(c).Files[0].OnChange = OnChangeReload },
			[]string{`spec.components[0].files[0].onChange: reload needs service.reload, the command systemd runs to reload`}},
		{"file onChange reload with service.reload", func(c *Cluster) {
			zk(c).Files[0].OnChange = OnChangeReload
			zk(c).Service.ReloadArgs = []string{"/bin/kill", "-HUP", "$MAINPID"}
		}, nil},
		{"service exec as a list", func(c *Cluster) {
			zk(c).Service.Exec, zk(c).Service.ExecArgs = "", []string{"{{ .Dir }}/bin/zk-run", "{{ .Node.Labels.zone }}"}
		}, []string{`spec.components[0].service.exec[1]: node m1: template: service.exec[1]:1:8: executing "service.exec[1]" at <.Node.Labels.zone>: map has no entry for key "zone"`}},
		{"service exec an empty list", func(c *Cluster) { zk(c).Service.Exec, zk(c).Service.ExecArgs = "", []string{} },
			[]string{`spec.components[0].service.exec: the list of arguments must not be empty`}},
		{"health tcp port", func(c *Cluster) { zk(c).Health.TCP.Port = 0 },
			[]string{`spec.components[0].health.tcp.port: must be between 1 and 65535, not 0`}},
		{"health tcp host", func(c *Cluster) { zk(c).Health.TCP.Host = "not a host" },
			[]string{`spec.components[0].health.tcp.host: "not a host" is not an IP address or host name`}},
		{"health http port and status", func(c *Cluster) {
			exporter(c).Health.HTTP.Port = 99999
			exporter(c).Health.HTTP.ExpectStatus = 42
		}, []string{`spec.components[1].health.http.port: must be between 1 and 65535, not 99999`,
			`spec.components[1].health.http.expectStatus: must be between 100 and 599, not 42`}},
		{"health http path", func(c *Cluster) { exporter(c).Health.HTTP.Path = "metrics" },
			[]string{`spec.components[1].health.http.path: "metrics" must be a URL path starting with /`}},
		{"health http host", func(c *Cluster) { exporter(c).Health.HTTP.Host = "http://x" },
			[]string{`spec.components[1].health.http.host: "http://x" is not an IP address or host name`}},
		{"health exec command missing", func(c *Cluster) { zk(c).Health = &Health{Exec: &ExecCheck{}} },
			[]string{`spec.components[0].health.exec.command: required`}},
		{"health exec program empty", func(c *Cluster) { zk(c).Health = &Health{Exec: &ExecCheck{Command: []string{"", "x"}}} },
			[]string{`spec.components[0].health.exec.command[0]: the program must not be empty`}},
		{"health timeout", func(c *Cluster) { zk(c).Health.Timeout = "5" },
			[]string{`spec.components[0].health.timeout: "5" is not a duration`}},
		{"health timeout zero", func(c *Cluster) { zk(c).Health.Timeout = "0ms" },
			[]string{`spec.components[0].health.timeout: "0ms" is not a positive duration`}},

		// dependsOn
		{"dependsOn unknown", func(c *Cluster) { exporter(c).DependsOn = []string{"zk", "zookeeper"} },
			[]string{`spec.components[1].dependsOn[1]: unknown component "zookeeper"`}},
		{"dependsOn absent", func(c *Cluster) { zk(c).State = StateAbsent },
			[]string{`spec.components[1].dependsOn[0]: "zk" is absent`}},
		{"dependsOn itself", func(c *Cluster) { zk(c).DependsOn = []string{"zk"} },
			[]string{`spec.components[0].dependsOn: dependency cycle: zk -> zk`}},
		{"dependsOn cycle", func(c *Cluster) { zk(c).DependsOn = []string{"exporter"} },
			[]string{`spec.components[0].dependsOn: dependency cycle: zk -> exporter -> zk`}},
		{"dependsOn longer cycle reported once", func(c *Cluster) {
			c.Spec.Components = append(c.Spec.Components, Component{
				Name: "dns", Version: "1", Files: []File{{Path: "x", Template: "x"}}, DependsOn: []string{"exporter", "exporter"},
			})
			zk(c).DependsOn = []string{"dns"}
		}, []string{`spec.components[0].dependsOn: dependency cycle: zk -> dns -> exporter -> zk`}},

		// placement
		{"roles match no node", func(c *Cluster) { zk(c).Roles = []string{"mastr"} },
			[]string{`warning: spec.components[0].roles[0]: no node has role "mastr"`,
				`spec.components[0].roles: matches no node`}},
		{"one unknown role among known ones", func(c *Cluster) { zk(c).Roles = []string{"master", "mastr"} },
			[]string{`warning: spec.components[0].roles[1]: no node has role "mastr"`}},
		{"selector matches no node", func(c *Cluster) { exporter(c).Selector = map[string]string{"zone": "b"} },
			[]string{`spec.components[1].selector: matches no node`}},
		{"roles and selector match no node", func(c *Cluster) {
			exporter(c).Roles = []string{"agent"}
			exporter(c).Selector = map[string]string{"zone": "b"}
			node(c, 3).Roles = []string{"worker"}
		}, []string{`warning: spec.components[1].roles[0]: no node has role "agent"`,
			`spec.components[1]: matches no node`,
			`spec.rollout.roleOrder[1]: no node has role "agent"`}},
		{"absent component may match nothing", func(c *Cluster) {
			exporter(c).State = StateAbsent
			exporter(c).Roles = []string{"gone"}
			exporter(c).Version = ""
			exporter(c).Artifact = nil
		}, nil},
		{"quorum with an even number of members", func(c *Cluster) { node(c, 3).Roles = []string{"agent", "master"} },
			[]string{`warning: spec.components[0].quorum: 4 members tolerate no more failures than 3`}},
		{"quorum of two", func(c *Cluster) { node(c, 2).Roles = []string{"agent"} },
			[]string{`warning: spec.components[0].quorum: 2 members tolerate no more failures than 1`}},
		{"quorum with no members", func(c *Cluster) { zk(c).Roles = []string{"zk-member"} },
			[]string{`warning: spec.components[0].roles[0]: no node has role "zk-member"`,
				`spec.components[0].roles: matches no node`}},

		// component rollout
		{"component maxUnavailable zero", func(c *Cluster) { zk(c).Rollout = &ComponentRollout{MaxUnavailable: NewCount(0)} },
			[]string{`spec.components[0].rollout.maxUnavailable: "0" must be a count of at least 1 or a percentage from 1% to 100%`}},
		{"component maxUnavailable over 100%", func(c *Cluster) { zk(c).Rollout = &ComponentRollout{MaxUnavailable: NewPercent(150)} },
			[]string{`spec.components[0].rollout.maxUnavailable: "150%" must be a count of at least 1 or a percentage from 1% to 100%`}},

		// cluster rollout
		{"roleOrder unknown role", func(c *Cluster) { c.Spec.Rollout.RoleOrder = []string{"master", "public_agent", "agent"} },
			[]string{`spec.rollout.roleOrder[1]: no node has role "public_agent"`}},
		{"roleOrder bad name", func(c *Cluster) { c.Spec.Rollout.RoleOrder = []string{"Master"} },
			[]string{`spec.rollout.roleOrder[0]: "Master" must match [a-z0-9][a-z0-9._-]*`}},
		{"roleOrder duplicate", func(c *Cluster) { c.Spec.Rollout.RoleOrder = []string{"master", "agent", "master"} },
			[]string{`spec.rollout.roleOrder[2]: duplicate role "master"`}},
		{"maxUnavailable percent zero", func(c *Cluster) { c.Spec.Rollout.MaxUnavailable = NewPercent(0) },
			[]string{`spec.rollout.maxUnavailable: "0%" must be a count of at least 1 or a percentage from 1% to 100%`}},
		{"maxUnavailable negative", func(c *Cluster) { c.Spec.Rollout.MaxUnavailable = NewCount(-1) },
			[]string{`spec.rollout.maxUnavailable: "-1" must be a count of at least 1 or a percentage from 1% to 100%`}},
		{"maxUnavailable unparsed", func(c *Cluster) { v := parseIntOrPercent("ten"); c.Spec.Rollout.MaxUnavailable = &v },
			[]string{`spec.rollout.maxUnavailable: "ten" must be a count of at least 1 or a percentage from 1% to 100%`}},
		{"healthTimeout", func(c *Cluster) { c.Spec.Rollout.HealthTimeout = "5 minutes" },
			[]string{`spec.rollout.healthTimeout: "5 minutes" is not a duration`}},
		{"onFailure", func(c *Cluster) { c.Spec.Rollout.OnFailure = "panic" },
			[]string{`spec.rollout.onFailure: must be rollback or halt, not "panic"`}},
		{"maxFailures negative", func(c *Cluster) { c.Spec.Rollout.MaxFailures = -1 },
			[]string{`spec.rollout.maxFailures: -1 must be 0 (halt at the first failed step) or more`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseBase(t)
			c.SetDefaults()
			tc.mutate(c)
			got := problemStrings(c.Validate())
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// TestValidateReportsEverything breaks many rules at once: every problem
// comes back in one call, errors and warnings apart.
func TestValidateReportsEverything(t *testing.T) {
	c := parseBase(t)
	c.SetDefaults()
	c.Kind = "Klaster"
	node(c, 1).Name = "m1"
	zk(c).Artifact.SHA256 = "xyz"
	exporter(c).Health.HTTP.Port = 0
	c.Spec.ProbeInterval = "3x"
	node(c, 3).Roles = []string{"agent", "master"}
	ps := c.Validate()
	want := []string{
		`kind: must be Cluster, not "Klaster"`,
		`spec.probeInterval: "3x" is not a duration`,
		`spec.nodes[1].name: duplicate name "m1" (also spec.nodes[0])`,
		`spec.components[0].artifact.sha256: must be 64 hex characters`,
		`spec.components[1].health.http.port: must be between 1 and 65535, not 0`,
		`warning: spec.components[0].quorum: 4 members tolerate no more failures than 3`,
	}
	if got := problemStrings(ps); !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if !ps.HasErrors() || len(ps.Warnings()) != 1 {
		t.Fatalf("HasErrors=%v, %d warnings", ps.HasErrors(), len(ps.Warnings()))
	}
}
