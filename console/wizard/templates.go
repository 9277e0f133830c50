package wizard

import (
	"fmt"
	"strings"

	"github.com/drover-project/drover/manifests"
)

// Template is what the wizard knows about a well-known component: how to
// run it and the config files it needs. The page offers it for artifacts
// whose name matches and fills the form from it; the files are built on
// the server when the manifest is, from the component's role.
type Template struct {
	Name        string      `json:"name"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Roles       []string    `json:"roles"` // suggested roles; none means every node
	Exec        string      `json:"exec"`
	Health      HealthSetup `json:"health"`
	// ServiceUser runs the service; "" is root.
	ServiceUser string `json:"serviceUser,omitempty"`
	// Quorum marks a majority-based ensemble (one member at a time).
	Quorum bool `json:"quorum"`
	// Artifacts are the normalised artifact names the template applies to.
	Artifacts []string `json:"artifacts"`
	// OneRole says the files are built from exactly one role's nodes.
	OneRole bool `json:"oneRole"`
	// files builds the template's files for the component's role.
	files func(role string) []manifests.File
}

// templates is every known component, in the order the page lists them.
// The zookeeper one expects the layout of test/artifacts (bin/zk-run, a
// relocatable tree reading conf/zoo.cfg and conf/myid).
func templates() []Template {
	return []Template{
		{
			Name:        "zookeeper",
			Title:       "ZooKeeper ensemble",
			Description: "One ZooKeeper member per node of the chosen role; zoo.cfg lists every member (server.N lines from the role's nodes) and myid numbers them in node order. Members change one at a time while the others are healthy.",
			Roles:       []string{"master"},
			Exec:        "{{ .Dir }}/bin/zk-run",
			Health:      HealthSetup{Kind: "tcp", Port: 2181},
			Quorum:      true,
			Artifacts:   []string{"zookeeper"},
			OneRole:     true,
			files:       zookeeperFiles,
		},
		{
			Name:        "node-exporter",
			Title:       "Prometheus node_exporter",
			Description: "Host metrics on port 9100 of the node's own address, run as nobody.",
			Exec:        "{{ .Dir }}/bin/node_exporter --web.listen-address={{ .Node.Address }}:9100",
			Health:      HealthSetup{Kind: "http", Port: 9100, Path: "/metrics"},
			ServiceUser: "nobody",
			Artifacts:   []string{"node-exporter"},
		},
	}
}

// templateByName finds a template; ok is false for "" and unknown names.
func templateByName(name string) (Template, bool) {
	for _, t := range templates() {
		if t.Name == name {
			return t, true
		}
	}
	return Template{}, false
}

// templateFor is the template whose artifacts include the normalised name.
func templateFor(component string) string {
	for _, t := range templates() {
		for _, a := range t.Artifacts {
			if a == component {
				return t.Name
			}
		}
	}
	return ""
}

// zookeeperFiles is zoo.cfg and myid for an ensemble made of role's nodes.
// Every listener binds to the node's own address, and the admin server
// (0.0.0.0:8080 by default) stays off.
func zookeeperFiles(role string) []manifests.File {
	zoo := strings.Join([]string{
		"# Rendered by drover for {{ .Node.Name }}; edits here are overwritten.",
		"tickTime=2000",
		"initLimit=10",
		"syncLimit=5",
		"dataDir=/var/lib/zookeeper",
		"clientPort=2181",
		"clientPortAddress={{ .Node.Address }}",
		"admin.enableServer=false",
		"4lw.commands.whitelist=ruok,srvr,mntr",
		fmt.Sprintf("{{- range $i, $m := nodesWithRole %q }}", role),
		"server.{{ add $i 1 }}={{ $m.Address }}:2888:3888",
		"{{- end }}",
	}, "\n") + "\n"
	return []manifests.File{
		{Path: "conf/zoo.cfg", Mode: "0644", Template: zoo},
		{Path: "conf/myid", Mode: "0644", Template: fmt.Sprintf("{{ add (index .Node.Index %q) 1 }}\n", role)},
	}
}
