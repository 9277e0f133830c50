package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/harness"
)

// The peers write app.conf and peers.conf themselves (pssh's printf,
// Ansible's templates); verifyInstalled holds them to these bytes, so
// drover's rendering of the bench manifest must produce the same.
func TestManifestRendersWhatPeersWrite(t *testing.T) {
	dir := t.TempDir()
	c := &harness.Cluster{User: "root", IdentityFile: filepath.Join(dir, "id"), KnownHostsFile: filepath.Join(dir, "kh")}
	var nodes []harness.Node
	for i, a := range []string{"127.0.10.1", "127.0.10.2", "127.0.10.3", "127.0.10.4", "127.0.10.5"} {
		nodes = append(nodes, harness.Node{Name: "n" + string(rune('1'+i)), Address: a, Port: 22})
	}
	art, err := makeArtifact(dir, "app", "1.0", 1000)
	if err != nil {
		t.Fatal(err)
	}
	comp := component{Name: "app", Version: "1.0", Art: art, Health: true}
	p := filepath.Join(dir, "cluster.yaml")
	if err := writeManifest(p, c, manifestSpec{Nodes: nodes, Components: []component{comp}, Concurrency: 5}); err != nil {
		t.Fatal(err)
	}
	l, err := manifests.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Cluster.Spec.SSH.Concurrency; got != 5 {
		t.Errorf("concurrency = %d, want 5", got)
	}
	wantPeers := "server.0=127.0.10.1:2888:3888\nserver.1=127.0.10.2:2888:3888\nserver.2=127.0.10.3:2888:3888\n"
	if got := peersConf(nodes); got != wantPeers {
		t.Errorf("peersConf = %q, want %q", got, wantPeers)
	}
	for i, dn := range d.Nodes {
		dc := dn.Component("app")
		if dc == nil || len(dc.Files) != 2 {
			t.Fatalf("%s: component = %+v", dn.Name, dc)
		}
		want := map[string]string{
			filePaths(comp)[0]: appConf(nodes[i].Address, "1.0"),
			filePaths(comp)[1]: wantPeers,
		}
		for _, f := range dc.Files {
			if string(f.Content) != want[f.Path] {
				t.Errorf("%s: %s = %q, want %q", dn.Name, f.Path, f.Content, want[f.Path])
			}
		}
		if dc.ArtifactSHA256 != art.SHA256 || dc.Health == nil {
			t.Errorf("%s: artifact %s health %v", dn.Name, dc.ArtifactSHA256, dc.Health)
		}
	}
}

// The artifact is the same bytes on every run, so runs compare.
func TestArtifactIsDeterministic(t *testing.T) {
	a, err := makeArtifact(t.TempDir(), "big", "1.0", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := makeArtifact(t.TempDir(), "big", "1.0", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 || a.SHA1 != b.SHA1 {
		t.Fatalf("two builds differ: %s %s", a.SHA256, b.SHA256)
	}
	// Incompressible payload: the tarball is about the size of the blob.
	if a.Size < 3<<20 {
		t.Errorf("artifact is %d bytes, want at least the %d-byte blob", a.Size, 3<<20)
	}
	out := t.TempDir()
	if err := untar(a.Path, out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(out, "data", "blob.bin"))
	if err != nil || st.Size() != 3<<20 {
		t.Fatalf("blob: %v %v", st, err)
	}
	v, err := os.ReadFile(filepath.Join(out, "VERSION"))
	if err != nil || string(v) != "1.0\n" {
		t.Fatalf("VERSION = %q, %v", v, err)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (drover (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(stat, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3*time.Second {
		t.Errorf("cpu = %s, want 3s (250+50 ticks at 100 Hz)", got)
	}
	if _, err := parseStatCPU("4242 (x) S 1", 100); err == nil {
		t.Error("short stat line: no error")
	}
}

func TestSummarise(t *testing.T) {
	s := summarise([]time.Duration{5, 1, 3})
	if s.N != 3 || s.Median != 3 || s.Min != 1 || s.Max != 5 {
		t.Errorf("odd: %+v", s)
	}
	s = summarise([]time.Duration{4, 1, 3, 10})
	if s.Median != 3 { // (3+4)/2 in integer nanoseconds
		t.Errorf("even: median %d, want 3", s.Median)
	}
	if c := (stats{N: 1, Median: 2 * time.Second, Min: 2 * time.Second, Max: 2 * time.Second, Planned: 3}).cell(); !strings.Contains(c, "1 of 3 runs") {
		t.Errorf("cut run count not shown: %q", c)
	}
}

func TestParseBenchLine(t *testing.T) {
	bl := parseBenchLine("BenchmarkProbe/nodes=10/warm-2 3 1308002241 ns/op 190.8 allocs/probe 130800224 ns/node 1260448 B/op 1908 allocs/op")
	if bl.Name != "BenchmarkProbe/nodes=10/warm-2" || bl.Metrics["allocs/probe"] != "190.8" || bl.Metrics["ns/node"] != "130800224" || bl.Metrics["N"] != "3" {
		t.Errorf("parsed %+v", bl)
	}
}

func TestPeerProbeScriptReadsEveryComponent(t *testing.T) {
	s := peerProbeScript([]component{{Name: "app", Version: "1.0", Health: true}, {Name: "agent", Version: "2"}})
	for _, want := range []string{"cat receipts/app.json", "cat receipts/agent.json", "readlink active/agent",
		"/opt/drover/packages/agent/2/conf/peers.conf", "health app ok", "set -e"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "health agent") {
		t.Error("health check for a component without one")
	}
}

func testConfig() config {
	return config{fastRuns: 5, slowRuns: 3, slowAfter: 10 * time.Second, verySlowRuns: 2, verySlowAfter: time.Minute,
		peerBudget: 3 * time.Minute, settle: true, settleFloor: 2 * time.Minute, peerTimeout: 20 * time.Minute}
}

func TestPeerPolicyStopsOnceTheTargetIsSettled(t *testing.T) {
	b := &bench{cfg: testConfig()}
	drover := func(d time.Duration) stats { return summarise([]time.Duration{d}) }
	for _, tc := range []struct {
		name   string
		target float64
		drover stats
		want   time.Duration
	}{
		{"target times drover", 5, drover(3 * time.Minute), 15 * time.Minute},
		{"never under the floor", 10, drover(5 * time.Second), 2 * time.Minute},
		{"capped by the peer timeout", 5, drover(5 * time.Minute), 20 * time.Minute},
		{"no target", 0, drover(time.Second), 20 * time.Minute},
		{"drover not measured", 10, stats{}, 20 * time.Minute},
	} {
		if got := b.peerPolicy(tc.target, tc.drover); got.stopAt != tc.want || !got.peer {
			t.Errorf("%s: %+v, want stopAt %s", tc.name, got, tc.want)
		}
	}
	b.cfg.settle = false
	if got := b.peerPolicy(10, drover(time.Second)); got.stopAt != 20*time.Minute {
		t.Errorf("-settle=false: stopAt %s, want the peer timeout", got.stopAt)
	}
}

func TestMeasureRunCountsAndStops(t *testing.T) {
	b := &bench{cfg: testConfig()}
	ctx := t.Context()
	count := func(first, rest time.Duration, pol policy) (stats, int) {
		calls := 0
		st := b.measure(ctx, "test", pol, nil, func(context.Context) (time.Duration, error) {
			calls++
			if calls == 1 {
				return first, nil
			}
			return rest, nil
		})
		return st, calls
	}
	if st, n := count(time.Second, time.Second, policy{}); n != 5 || st.N != 5 {
		t.Errorf("fast: %d runs, N=%d, want 5", n, st.N)
	}
	if _, n := count(30*time.Second, 30*time.Second, policy{}); n != 3 {
		t.Errorf("slow: %d runs, want 3", n)
	}
	if _, n := count(3*time.Minute, 3*time.Minute, policy{}); n != 2 {
		t.Errorf("very slow: %d runs, want 2", n)
	}
	// A peer over its budget (3 min) runs once; the plan is still shown.
	if st, n := count(50*time.Second, 50*time.Second, policy{peer: true}); n != 3 {
		t.Errorf("peer within budget: %d runs, %+v", n, st)
	}
	if st, n := count(100*time.Second, 100*time.Second, policy{peer: true}); n != 1 || st.Planned != 2 || !strings.Contains(st.cell(), "1 of 2 runs") {
		t.Errorf("peer budget: %d runs, %+v", n, st)
	}

	// A run still going at stopAt is stopped, kept as a lower bound and
	// not repeated.
	calls := 0
	st := b.measure(ctx, "test", policy{peer: true, stopAt: 20 * time.Millisecond}, nil, func(ctx context.Context) (time.Duration, error) {
		calls++
		start := time.Now()
		<-ctx.Done()
		return time.Since(start), ctx.Err()
	})
	// The run times itself from its own start, a little after the limit's
	// clock started on a loaded machine: it is kept, not compared with 20ms.
	if calls != 1 || st.ok() || st.Exceeded <= 0 || st.StopAt != 20*time.Millisecond || st.Failed != 0 {
		t.Fatalf("stopped run: %d calls, %+v", calls, st)
	}
	if c := st.cell(); !strings.HasPrefix(c, "> ") || !strings.Contains(c, "stopped") {
		t.Errorf("cell of a stopped run = %q", c)
	}
}

func TestTargetsJudgeStoppedPeersAsLowerBounds(t *testing.T) {
	drover := summarise([]time.Duration{100 * time.Second, 90 * time.Second, 110 * time.Second})
	row := func(ansible stats) string {
		b := &bench{cfg: testConfig(), res: &results{Converge: []convergeResult{{Nodes: 100, Drover: drover, Ansible: ansible}}}}
		var w strings.Builder
		b.writeTargets(&w)
		for _, l := range strings.Split(w.String(), "\n") {
			if strings.HasPrefix(l, "| converge of 100 nodes") {
				return l
			}
		}
		t.Fatalf("no converge row in:\n%s", w.String())
		return ""
	}
	for _, tc := range []struct {
		name    string
		ansible stats
		ratio   string
		met     string
	}{
		{"stopped past the target: met", stats{Exceeded: 501 * time.Second}, "> 5.0x", "yes"},
		{"stopped short of it: unknown", stats{Exceeded: 300 * time.Second}, "> 3.0x", "—"},
		{"finished under it: missed", summarise([]time.Duration{400 * time.Second}), "4.0x", "**no**"},
		{"finished over it: met", summarise([]time.Duration{600 * time.Second}), "6.0x", "yes"},
	} {
		cols := strings.Split(row(tc.ansible), " | ")
		if len(cols) != 4 || !strings.HasPrefix(cols[1], tc.ratio+": ") || cols[2] != tc.met {
			t.Errorf("%s: columns %q, want ratio %q, met %q", tc.name, cols, tc.ratio, tc.met)
		}
	}
}

func TestFmtWall(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second:                           "42.0 s",
		41*time.Minute + 7*time.Second + 400e6:     "41 min 7 s",
		time.Hour + 2*time.Minute + 59*time.Second: "62 min 59 s",
		20 * time.Minute:                           "20 min",
	} {
		if got := fmtWall(d); got != want {
			t.Errorf("fmtWall(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestKeptSectionsSurviveARun: hand-written sections of BENCHMARKS.md
// come back from keptSections with their markers, and nothing else does.
func TestKeptSectionsSurviveARun(t *testing.T) {
	old := "# drover benchmarks\ngenerated text\n" + keptBegin + "ssh -->\n## SSH\n| a | b |\n" + keptEnd + "\nmore generated\n" +
		keptBegin + "two -->\nsecond\n" + keptEnd + "\n" + keptBegin + "unterminated -->\n"
	want := "\n" + keptBegin + "ssh -->\n## SSH\n| a | b |\n" + keptEnd + "\n\n" + keptBegin + "two -->\nsecond\n" + keptEnd + "\n"
	if got := keptSections(old); got != want {
		t.Errorf("keptSections:\n%q\nwant\n%q", got, want)
	}
	if got := keptSections("no sections"); got != "" {
		t.Errorf("no sections: %q", got)
	}
	// The real file's kept sections are found (the SSH one at least).
	data, err := os.ReadFile("../../docs/BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(keptSections(string(data)), "100 nodes behind one bastion") {
		t.Error("docs/BENCHMARKS.md has no kept SSH section")
	}
}
