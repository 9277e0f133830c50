// Package e2econsole drives the web console of a real `drover daemon`
// with a real headless Chromium (Debian's chromium, through chromedp)
// while the daemon manages three real systemd nodes (test/harness), and
// checks what issue 9 promises of the console: the cluster page shows
// every node converged; after a manifest edit it shows the rollout
// progressing and then converged without a reload; a node cut off turns
// unreachable on the page; the node page shows facts, receipts and
// actions; the page stays usable on a narrow screen. A screenshot of each
// step is saved under ./artifacts (or $DROVER_TEST_ARTIFACTS).
//
// The tests need root (the harness does) and skip without it, or under
// -short. A missing Chromium is a failure, never a skip.
package e2econsole

import (
	"os"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// shared is booted by TestMain; tests reach it through setup.
var shared = harness.NewSuite(harness.SuiteOptions{Name: "e2econsole", Nodes: 3, NodeName: "ec"})

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

// suite is what the package's tests share: the nodes, the artifacts and
// the drover binary built for this run.
type suite struct {
	c      *harness.Cluster
	old    harness.Artifact // node_exporter 1.8.2
	new    harness.Artifact // node_exporter 1.9.1
	drover string
	work   string // temp dir: binary, lock dir, manifests
}

// setup is every test's first line.
func setup(t *testing.T) *suite {
	t.Helper()
	shared.Setup(t)
	return &suite{c: shared.Cluster, drover: shared.Drover, work: shared.Work,
		old: shared.Artifacts[harness.ArtifactNodeExporterOld], new: shared.Artifacts[harness.ArtifactNodeExporterNew]}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
