package manifests

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// bigCluster is the DC/OS example with n agents.
func bigCluster(tb testing.TB, n int) []byte {
	data, err := os.ReadFile("../examples/dcos/cluster.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var agents strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&agents, "    - {name: x%d, address: 10.1.%d.%d, roles: [agent], labels: {zone: z%d}}\n", i, i/250, i%250+1, i%3)
	}
	anchor := "  components:\n"
	return []byte(strings.Replace(string(data), anchor, agents.String()+anchor, 1))
}

// BenchmarkLoad measures parse, defaults and validation (which renders
// every template for every node) of a 1000-node manifest.
func BenchmarkLoad(b *testing.B) {
	data := bigCluster(b, 1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadBytes("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadThousandNodes(t *testing.T) {
	l, err := LoadBytes("big.yaml", bigCluster(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Cluster.Spec.Nodes); got != 1006 {
		t.Fatalf("%d nodes", got)
	}
}

// memberList is a manifest of n nodes with one component on every node
// whose file lists every member: the template a ZooKeeper or etcd
// ensemble of the whole cluster uses.
func memberList(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: big}\nspec:\n  nodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {name: n%d, address: 10.%d.%d.%d, roles: [member]}\n", i, i/65536, i/256%256, i%256)
	}
	b.WriteString(`  components:
    - name: members
      version: "1"
      artifact: {url: "https://example.com/m.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
        - path: conf/members
          template: "{{range .Cluster.Nodes}}{{.Name}} {{.Address}}\n{{end}}"
        - path: conf/myid
          template: "{{.Node.Index.member}}\n"
`)
	return []byte(b.String())
}

// BenchmarkMemberList loads (validation renders every node) and renders
// every node's files with one Renderer, as Compile does. Time and memory
// per op must grow linearly with the nodes: the member list is the same
// on every node and is rendered and hashed once.
func BenchmarkMemberList(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := memberList(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l, err := LoadBytes("members.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				c := l.Cluster
				r := c.NewRenderer(context.Background())
				for i := range c.Spec.Nodes {
					files, err := r.Render(&c.Spec.Nodes[i], &c.Spec.Components[0])
					if err != nil {
						b.Fatal(err)
					}
					_ = ConfigHash(Digests(files))
				}
			}
		})
	}
}
