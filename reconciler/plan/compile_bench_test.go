package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
)

// BenchmarkCompileMemberList compiles a manifest whose one component,
// on every node, has a service and a file listing every member: time and
// memory must grow linearly with the nodes (the list is rendered and
// hashed once, manifests.Renderer), not with their square.
func BenchmarkCompileMemberList(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		var m strings.Builder
		m.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: big}\nspec:\n  nodes:\n")
		for i := range n {
			fmt.Fprintf(&m, "    - {name: n%d, address: 10.%d.%d.%d, roles: [member]}\n", i, i/65536, i/256%256, i%256)
		}
		m.WriteString(`  components:
    - name: members
      version: "1"
      artifact: {url: "https://example.com/m.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
        - path: conf/members
          template: "{{range .Cluster.Nodes}}{{.Name}} {{.Address}}\n{{end}}"
      service: {exec: "{{ .Dir }}/bin/run --id={{ .Node.Index.member }}"}
`)
		l, err := manifests.LoadBytes("members.yaml", []byte(m.String()))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadAndCompile is what the daemon does with an edited
// manifest before it can act (parse, validate, render every node, build
// every node's desired state), for the manifest fleetbench uses: one
// component with a file and a service on every node. It bounds the edit's
// reaction time at 10,000 nodes (docs/BENCHMARKS-SCALE.md).
func BenchmarkLoadAndCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		var m strings.Builder
		m.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: fleet}\nspec:\n  rollout: {maxUnavailable: \"10%\"}\n  nodes:\n")
		for i := range n {
			fmt.Fprintf(&m, "    - {name: sim-%05d, address: 10.%d.%d.%d}\n", i, i/65536, i/256%256, i%256)
		}
		m.WriteString(`  components:
    - name: app
      version: "1.0"
      artifact: {url: "https://example.com/app.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
        - {path: conf/app.conf, template: "address={{ .Node.Address }}\nsetting=2\n"}
      service: {exec: "{{ .Dir }}/bin/app"}
      health: {exec: {command: [/opt/drover/active/app/bin/app, --check]}, timeout: 5s}
`)
		data := []byte(m.String())
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l, err := manifests.LoadBytes("fleet.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Compile(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
