// Package e2ewizard drives the setup wizard in a real headless Chromium
// (test/browser) against a real `drover daemon` and three real systemd
// nodes (test/harness): it fills in the SSH login, pastes the nodes, picks
// node_exporter and a ZooKeeper ensemble from the artifacts folder, runs
// preflight, accepts the host keys it shows, reviews the manifest and the
// plan, writes the manifest, and waits until the daemon has applied it
// to every node. Each step's screenshot is saved (see test/browser).
//
// As for a new cluster, the daemon starts with no manifest at all and
// serves the wizard, whose write it then takes up. The test needs root
// and skips under -short.
package e2ewizard

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/test/browser"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

const nodeCount = 3

func TestWizardSetsUpAClusterTheDaemonConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("e2ewizard: skipped in -short mode")
	}
	harness.RequireRoot(t)
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), time.Since(start).Round(time.Second)) })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	work := t.TempDir()
	c, bin, arts := bootSuite(t, ctx, work)

	// What drover owns on the bootstrap host: its known_hosts (empty: the
	// wizard fills it), the artifacts folder, the watched manifest.
	knownHosts := filepath.Join(work, "state", "known_hosts")
	artifactsDir := filepath.Join(work, "artifacts")
	manifest := filepath.Join(work, "etc", "cluster.yaml")
	for _, d := range []string{filepath.Dir(knownHosts), artifactsDir, filepath.Dir(manifest)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{harness.ArtifactNodeExporterOld, harness.ArtifactNodeExporterNew, harness.ArtifactZooKeeper} {
		a := arts[key]
		// A copy, not a symbolic link: the wizard lists only regular
		// files inside its folder (issue 24).
		data, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(artifactsDir, filepath.Base(a.Path)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	token, err := console.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	d := serveWizard(t, bin, work, token, manifest, artifactsDir, knownHosts)

	b := browser.New(t)
	p := &page{t: t, ctx: b}
	// The operator follows the URL the daemon printed.
	p.run("open the wizard",
		chromedp.Navigate(d.URL("/setup")+"?token="+url.QueryEscape(token)),
		visible(`body[data-ready="true"]`),
	)
	if p.truth(`location.search.includes("token")`) {
		t.Error("the token stayed in the address bar")
	}

	// 1: SSH.
	p.run("ssh step",
		setValue(`#cluster-name`, "wizard-e2e"),
		setValue(`#probe-interval`, "5s"),
		setValue(`#ssh-user`, c.User),
		setValue(`#identity-file`, c.IdentityFile),
	)
	p.shot("01-ssh")

	// 2: nodes, pasted with names; every node a master (ZooKeeper).
	var paste strings.Builder
	for i, n := range c.Nodes {
		fmt.Fprintf(&paste, "%s m%d\n", n.Address, i+1)
	}
	p.run("nodes step",
		click(`button[data-next="nodes"]`),
		visible(`#nodes-paste`),
		setValue(`#nodes-paste`, paste.String()),
		click(`#nodes-add`),
		visible(fmt.Sprintf(`#nodes-table tbody tr[data-node="%d"]`, nodeCount-1)),
		click(`button[data-all-role="master"]`),
	)
	p.shot("02-nodes")

	// 3: components: node_exporter 1.9.1 everywhere, ZooKeeper on the masters.
	p.run("components step",
		click(`button[data-next="components"]`),
		visible(`.component[data-component="zookeeper"]`),
		click(`.component[data-component="node-exporter"] input.include`),
		click(`.component[data-component="zookeeper"] input.include`),
		visible(`.component[data-component="zookeeper"] input.exec`),
		setValue(`.component[data-component="node-exporter"] select.version`, "node_exporter-1.9.1.tar.gz"),
	)
	p.shot("03-components")

	// 4: preflight: the keys are unknown, nothing else runs; accept them
	// all, and preflight runs again with the nodes trusted.
	p.run("first preflight",
		click(`button[data-next="preflight"]`),
		click(`#preflight-run`),
		visible(fmt.Sprintf(`#preflight-results .card:nth-child(%d) .accept-key`, nodeCount)),
	)
	want := hostKeyFingerprints(t, c)
	for i, n := range c.Nodes {
		fp := p.text(fmt.Sprintf(`.card[data-node="m%d"] code.fingerprint`, i+1))
		if !strings.HasSuffix(fp, want[n.Address]) {
			t.Errorf("m%d shows %q, want its real host key %s", i+1, fp, want[n.Address])
		}
	}
	if b, _ := os.ReadFile(knownHosts); len(b) != 0 {
		t.Fatalf("known_hosts written before any key was accepted:\n%s", b)
	}
	p.shot("04-preflight-host-keys")
	p.run("accept the keys and check again",
		click(`#accept-all`),
		visible(fmt.Sprintf(`.card[data-node="m%d"] tr[data-check="clock"] .badge:not(.skip)`, nodeCount)),
	)
	for i := range c.Nodes {
		for _, check := range []string{"reachable", "host key", "login", "os", "systemd", "disk", "clock"} {
			sel := fmt.Sprintf(`.card[data-node="m%d"] tr[data-check="%s"]`, i+1, check)
			status, msg := p.text(sel+` .badge`), p.text(sel+` td.msg`)
			if !strings.EqualFold(status, "pass") {
				t.Errorf("m%d %s: %s %s", i+1, check, status, msg)
			}
		}
	}
	if n := lines(t, knownHosts); n != nodeCount {
		t.Errorf("known_hosts has %d lines, want %d", n, nodeCount)
	}
	p.shot("05-preflight")

	// 5: review: valid, and the plan installs both components everywhere.
	p.run("review",
		click(`button[data-next="review"]`),
		click(`#review-run`),
		visible(`#problems[data-state="done"] li`),
	)
	plan, problems := p.text(`#plan`), p.text(`#problems`)
	if !strings.Contains(problems, "Valid") {
		t.Fatalf("review found problems:\n%s", problems)
	}
	for _, want := range []string{"+ install node-exporter 1.9.1", "+ install zookeeper"} {
		if strings.Count(plan, want) != nodeCount {
			t.Errorf("plan should %q on each of %d nodes:\n%s", want, nodeCount, plan)
		}
	}
	p.shot("06-review")

	// 6: write, then watch the daemon converge from the page.
	p.run("write",
		click(`button[data-next="write"]`),
		click(`#write-run`),
		visible(`#write-result`),
	)
	p.shot("07-written")
	if backups, _ := filepath.Glob(manifest + ".bak-*"); len(backups) != 0 {
		t.Errorf("backups of a manifest that did not exist: %v", backups)
	}
	converge := time.Now()
	p.runTimeout("converge", 8*time.Minute, visible(`#converge[data-state="converged"]`))
	t.Logf("converged %v after the write", time.Since(converge).Round(time.Second))
	p.shot("08-converged")

	// A phone-sized screen: one column, nothing wider than the screen.
	p.run("narrow screen", chromedp.EmulateViewport(390, 844))
	for _, step := range []string{"write", "review", "preflight", "components", "nodes"} {
		p.run("narrow "+step, click(`.steps button[data-step="`+step+`"]`), visible(`#step-`+step))
		if !p.truth(`document.documentElement.scrollWidth <= window.innerWidth`) {
			t.Errorf("the %s step scrolls sideways on a 390px screen", step)
		}
		p.shot("09-narrow-" + step)
	}

	// The daemon agrees: it runs the written manifest on every node.
	st := d.Status()
	written, _ := os.ReadFile(manifest)
	if !st.LoadSuccess || st.Cluster != "wizard-e2e" || len(st.Nodes) != nodeCount {
		t.Fatalf("daemon status: cluster %q load %v nodes %d", st.Cluster, st.LoadSuccess, len(st.Nodes))
	}
	if st.Hash != sha256Hex(written) {
		t.Errorf("daemon runs %s, not the written manifest %s", st.Hash, sha256Hex(written))
	}
	for _, n := range st.Nodes {
		if !n.Converged || len(n.Components) != 2 {
			t.Errorf("node %s: converged %v, %d components (%s)", n.Name, n.Converged, len(n.Components), n.Reason)
		}
	}
	// Every ZooKeeper member is serving as part of one ensemble.
	for i, n := range c.Nodes {
		out, err := c.Exec(ctx, n.Name, "cat /var/lib/zookeeper/myid")
		if err != nil || strings.TrimSpace(out) != fmt.Sprint(i+1) {
			t.Errorf("%s myid %q (%v), want %d", n.Name, out, err, i+1)
		}
	}
}

// serveWizard starts the daemon for a new cluster (no manifest yet) with
// the console token in a file, and checks that it serves the wizard and
// says it has no manifest.
func serveWizard(t *testing.T, bin, work, token, manifest, artifactsDir, knownHosts string) *daemonproc.Daemon {
	t.Helper()
	d := daemonproc.Start(t, daemonproc.Options{Binary: bin, Manifest: manifest, Token: token, Grace: 30 * time.Second,
		LockDir: filepath.Join(work, "lock"), LogPath: filepath.Join(work, "daemon.log"),
		Args: []string{"--artifacts-dir", artifactsDir, "--known-hosts", knownHosts}})
	if _, err := d.Get("/setup"); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.LoadSuccess || !strings.Contains(st.LoadError, "no manifest yet") {
		t.Errorf("a daemon with no manifest reports load %v, %q", st.LoadSuccess, st.LoadError)
	}
	return d
}

// bootSuite boots the nodes while building drover (into work) and the
// artifacts; the test's cleanup stops the nodes.
func bootSuite(t *testing.T, ctx context.Context, work string) (*harness.Cluster, string, map[string]harness.Artifact) {
	t.Helper()
	s := harness.NewSuite(harness.SuiteOptions{Name: "e2ewizard", Nodes: nodeCount, NodeName: "wz", WorkDir: work, Logf: t.Logf})
	s.Boot(ctx)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close nodes: %v", err)
		}
	})
	if s.Err != nil {
		t.Fatal(s.Err)
	}
	return s.Cluster, s.Drover, s.Artifacts
}

// hostKeyFingerprints reads the harness's own known_hosts: the keys the
// nodes really have, by address.
func hostKeyFingerprints(t *testing.T, c *harness.Cluster) map[string]string {
	t.Helper()
	f, err := os.Open(c.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, hosts, key, _, _, err := ssh.ParseKnownHosts(sc.Bytes())
		if err != nil {
			continue
		}
		for _, h := range hosts {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]:22")
			out[h] = ssh.FingerprintSHA256(key)
		}
	}
	return out
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}
