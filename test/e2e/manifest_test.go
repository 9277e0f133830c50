package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-project/drover/test/harness"
)

// installRoot is where drover puts everything on the nodes.
const installRoot = "/opt/drover"

// spec is what a test varies in the cluster's manifest; base() is the
// DC/OS-like cluster of examples/dcos, moved to the test nodes.
type spec struct {
	// NodeExporter runs on every node.
	NodeExporter component
	// ZooKeeper runs on the masters; ZKComment goes into zoo.cfg, so
	// changing it is a rolling reconfigure of the ensemble.
	ZooKeeper component
	ZKComment string
	// MasterList is a files-only component on the agents;
	// MasterListExtra, when set, is a second line of its template.
	MasterListState string
	MasterListExtra string
	// Cluster-wide rollout.
	MaxUnavailable string
	HealthTimeout  string
	OnFailure      string
	// Order, when set, lists the nodes in the manifest in this order (by
	// index): the ensemble's ids, server list and the master list are
	// then written out for the nodes' own order, so they render exactly
	// as in any other order and only the rollout's node order changes.
	Order []int
}

// component is the part of a component a test changes.
type component struct {
	Version  string
	Artifact harness.Artifact
	// Exec is the service's command line.
	Exec           string
	State          string // "" or absent
	MaxUnavailable string // the component's own, "" for none
}

func (s *suite) base() spec {
	ne := s.arts[harness.ArtifactNodeExporterOld]
	zk := s.arts[harness.ArtifactZooKeeper]
	return spec{
		NodeExporter: component{
			Version: ne.Version, Artifact: ne,
			Exec:           "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100",
			MaxUnavailable: "40%",
		},
		ZooKeeper: component{
			Version: zk.Version, Artifact: zk,
			Exec: "{{ .Dir }}/bin/zk-run",
		},
		ZKComment:      "base",
		MaxUnavailable: "2",
		HealthTimeout:  "3m",
		OnFailure:      "rollback",
	}
}

// withNodeExporter is sp with node_exporter from another artifact.
func (sp spec) withNodeExporter(a harness.Artifact) spec {
	sp.NodeExporter.Version, sp.NodeExporter.Artifact = a.Version, a
	return sp
}

// yaml renders the manifest for this cluster.
func (s *suite) yaml(sp spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: drover/v1
kind: Cluster
metadata:
  name: e2e
spec:
  installRoot: %s
  probeInterval: 10s
`, installRoot)
	b.WriteString(harness.Indent(s.c.SSHYAML(), 2))
	roles := func(i int) []string {
		if i < numMasters {
			return []string{"master"}
		}
		return []string{"agent"}
	}
	servers := `{{- range $i, $m := nodesWithRole "master" }}
            server.{{ add $i 1 }}={{ $m.Address }}:2888:3888
            {{- end }}`
	myid := "{{ add .Node.Index.master 1 }}"
	masterList := `{{ join "," (nodesWithRole "master") }}`
	if sp.Order != nil {
		b.WriteString("  nodes:\n")
		for _, i := range sp.Order {
			n := s.c.Nodes[i]
			fmt.Fprintf(&b, "    - name: %s\n      address: %s\n      port: %d\n      roles: [%s]\n", n.Name, n.Address, n.Port, strings.Join(roles(i), ", "))
		}
		var sv, id, ml strings.Builder
		for i, m := range s.masters {
			fmt.Fprintf(&sv, "\n            server.%d=%s:2888:3888", i+1, m.Address)
			fmt.Fprintf(&id, `{{ if eq .Node.Name %q }}%d{{ end }}`, m.Name, i+1)
			ml.WriteString(map[bool]string{true: ",", false: ""}[i > 0] + m.Address)
		}
		servers, myid, masterList = strings.TrimPrefix(sv.String(), "\n            "), id.String(), ml.String()
	} else {
		b.WriteString(harness.Indent(s.c.NodesYAML(roles), 2))
	}
	b.WriteString("  components:\n")
	b.WriteString(zookeeperYAML(sp.ZooKeeper, sp.ZKComment, servers, myid))
	b.WriteString(nodeExporterYAML(sp.NodeExporter))
	fmt.Fprintf(&b, `    - name: master-list
      version: "1"
      roles: [agent]
      state: %s
      files:
        - path: /etc/dcos/master_list
          mode: "0644"
          template: |
            %s
`, orDefault(sp.MasterListState, "present"), masterList)
	if sp.MasterListExtra != "" {
		fmt.Fprintf(&b, "            %s\n", sp.MasterListExtra)
	}
	fmt.Fprintf(&b, `  rollout:
    roleOrder: [master, agent]
    maxUnavailable: %s
    healthTimeout: %s
    onFailure: %s
`, sp.MaxUnavailable, sp.HealthTimeout, sp.OnFailure)
	return b.String()
}

// zookeeperYAML is the ensemble of examples/dcos with its health and
// leader checks: a member is healthy when it serves as leader or follower
// (srvr over bash's /dev/tcp), not merely when its client port accepts a
// connection, which it does before it has joined the quorum; the member
// that leads changes last.
//
// servers and myid are the templates of the server list and of myid.
func zookeeperYAML(c component, comment, servers, myid string) string {
	return fmt.Sprintf(`    - name: zookeeper
      version: %q
      roles: [master]
      quorum: true
      state: %s
      artifact:
        path: %s
        sha256: %q
      files:
        - path: conf/zoo.cfg
          mode: "0644"
          template: |
            # Rendered by drover for {{ .Node.Name }} (%s).
            tickTime=2000
            initLimit=10
            syncLimit=5
            dataDir=/var/lib/zookeeper
            clientPort=2181
            clientPortAddress={{ .Node.Address }}
            admin.enableServer=false
            4lw.commands.whitelist=ruok,srvr,mntr
            %[8]s
        - path: conf/myid
          mode: "0644"
          template: |
            %[9]s
        - path: bin/zk-mode
          mode: "0755"
          template: |
            #!/bin/bash
            # zk-mode MODE...: exits 0 when this member's mode is one of MODE.
            exec 3<>/dev/tcp/{{ .Node.Address }}/2181 || exit 2
            printf srvr >&3
            mode=$(sed -n 's/^Mode: //p' <&3)
            for m; do [ "$mode" = "$m" ] && exit 0; done
            exit 1
      service:
        exec: %[6]q
        environment:
          JAVA_OPTS: "-Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"
        restart: on-failure
      health:
        exec: {command: ["%[7]s/active/zookeeper/bin/zk-mode", leader, follower]}
        timeout: 5s
      leader:
        exec: {command: ["%[7]s/active/zookeeper/bin/zk-mode", leader]}
        timeout: 5s
`, c.Version, orDefault(c.State, "present"), c.Artifact.Path, c.Artifact.SHA256, comment, c.Exec, installRoot, servers, myid)
}

func nodeExporterYAML(c component) string {
	var rollout string
	if c.MaxUnavailable != "" {
		rollout = fmt.Sprintf("      rollout:\n        maxUnavailable: %q\n", c.MaxUnavailable)
	}
	return fmt.Sprintf(`    - name: node-exporter
      version: %q
      state: %s
      artifact:
        path: %s
        sha256: %q
      # A file outside the version dir: a rollback must put it back.
      files:
        - path: /etc/default/drover-node-exporter
          template: |
            # node-exporter {{ .Component.Version }}
      service:
        exec: %q
        user: nobody
      health:
        http: {port: 9100, path: /metrics}
        # /metrics runs every collector: seconds on a loaded test machine.
        timeout: 10s
%s`, c.Version, orDefault(c.State, "present"), c.Artifact.Path, c.Artifact.SHA256, c.Exec, rollout)
}

// write puts the manifest for sp into a new temp dir and returns its path.
func (s *suite) write(t *testing.T, sp spec) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(s.yaml(sp)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
