package manifests

import (
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
