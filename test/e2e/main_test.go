// Package e2e runs the real drover binary against real systemd nodes
// (test/harness): fresh install of a DC/OS-like cluster, plan, upgrades
// within maxUnavailable, drift repair, failed upgrades rolled back, a bad
// checksum, removal, idempotence, a killed apply, a ZooKeeper ensemble
// that keeps its quorum through a rolling change, and hostile artifacts,
// manifests and install roots that must not make drover write outside
// its paths.
//
// One cluster of five nodes (three masters, two agents) is booted once in
// TestMain and shared; every test first puts the cluster into the state it
// needs. The tests need root and skip under -short.
package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// Roles of the five nodes, by index.
const (
	numMasters = 3
	numAgents  = 2
)

// shared is booted by TestMain; tests reach it through setup.
var shared = harness.NewSuite(harness.SuiteOptions{Name: "e2e", Nodes: numMasters + numAgents, NodeName: "e2e"})

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

// suite is the cluster every test of the package shares, as the tests
// name its parts.
type suite struct {
	c       *harness.Cluster
	arts    map[string]harness.Artifact
	drover  string // the drover binary built for this run
	work    string // temp dir for the binary
	masters []harness.Node
	agents  []harness.Node
}

// setup is every test's first line: it skips when the suite cannot run
// here and fails when it should have but could not be set up.
func setup(t *testing.T) *suite {
	t.Helper()
	shared.Setup(t)
	c := shared.Cluster
	return &suite{c: c, arts: shared.Artifacts, drover: shared.Drover, work: shared.Work,
		masters: c.Nodes[:numMasters], agents: c.Nodes[numMasters:]}
}

func (s *suite) nodes() []harness.Node { return s.c.Nodes }

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
