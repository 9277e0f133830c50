// Package e2eha runs three real `drover daemon` processes on one cluster
// of real SSH nodes (light nodes of test/harness), coordinated by a real
// three-member etcd cluster (Debian's etcd-server) on loopback addresses
// of this package's own (127.5.0.0/16), and checks issue 22's promises:
// one leader acts, a killed leader is replaced within the lease TTL + 2s,
// a halt survives the takeover, and the rollout the dead leader began
// completes with never more than maxUnavailable nodes unavailable across
// both leaders, by a record the nodes themselves write.
//
// The nodes are booted once in TestMain and shared. The tests need root
// and skip under -short.
package e2eha

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

const nodes = 10

var (
	cluster *harness.Cluster
	drover  string
	work    string
	bootErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() || os.Geteuid() != 0 {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if work, err = os.MkdirTemp("", "drover-e2eha-"); err != nil {
		bootErr = err
		return m.Run()
	}
	defer func() {
		if os.Getenv(harness.KeepWorkEnv) == "" {
			os.RemoveAll(work)
		}
	}()
	drover = filepath.Join(work, "drover")
	if err := harness.BuildDrover(ctx, drover); err != nil {
		bootErr = err
		return m.Run()
	}
	cluster, err = harness.BootLight(ctx, harness.Options{N: nodes, Name: "eha",
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "e2eha: "+f+"\n", a...) }})
	if err != nil {
		bootErr = err
		return m.Run()
	}
	defer cluster.Close()
	return m.Run()
}

func setup(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2eha: skipped in -short mode")
	}
	harness.RequireRoot(t)
	if bootErr != nil {
		t.Fatalf("e2eha: setup failed: %v", bootErr)
	}
	if cluster == nil {
		t.Fatal("e2eha: no cluster (TestMain did not run?)")
	}
}
