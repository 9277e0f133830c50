package manifests

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/render/*.golden from the current output")

// exampleManifests are the manifests the render golden files cover.
func exampleManifests(t testing.TB) []string {
	paths, err := filepath.Glob("../examples/*/cluster.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	return paths
}

// renderCluster prints every node's files, node by node in manifest order.
func renderCluster(t testing.TB, c *Cluster) []byte {
	var b bytes.Buffer
	for i := range c.Spec.Nodes {
		n := &c.Spec.Nodes[i]
		files, err := c.RenderNode(n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "######## node %s (%s)\n", n.Name, n.Address)
		if err := WriteNodeFiles(&b, files); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// TestRenderGolden renders every example for every node and compares with
// testdata/render/<example>.golden; run with -update to accept changes.
func TestRenderGolden(t *testing.T) {
	for _, path := range exampleManifests(t) {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			l, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got := renderCluster(t, l.Cluster)
			golden := filepath.Join("testdata", "render", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./manifests -run TestRenderGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render of %s differs from %s (rerun with -update if intended):\n%s", path, golden, firstDiff(got, want))
			}
		})
	}
}

// firstDiff shows the first differing line.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got: %q\nwant: %q", i+1, gl, wl)
		}
	}
	return "same lines"
}

// TestRenderDeterministic renders each example twice from two separate
// loads: the bytes, and so the config hashes, must match exactly.
func TestRenderDeterministic(t *testing.T) {
	for _, path := range exampleManifests(t) {
		var outs [2][]byte
		var hashes [2][]string
		for i := range outs {
			l, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = renderCluster(t, l.Cluster)
			for _, n := range l.Cluster.Spec.Nodes {
				for _, comp := range l.Cluster.Spec.Components {
					if !comp.Matches(&n) {
						continue
					}
					files, err := l.Cluster.Render(&n, &comp)
					if err != nil {
						t.Fatal(err)
					}
					hashes[i] = append(hashes[i], ConfigHash(Digests(files)))
				}
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: two renders differ:\n%s", path, firstDiff(outs[0], outs[1]))
		}
		if strings.Join(hashes[0], ",") != strings.Join(hashes[1], ",") {
			t.Errorf("%s: config hashes differ", path)
		}
	}
}

// TestRenderZooKeeper checks the example ensemble's files on each master:
// the same server list everywhere, its own address and id on each.
func TestRenderZooKeeper(t *testing.T) {
	l, err := Load("../examples/dcos/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cluster
	zk, _ := c.ComponentByName("zookeeper")
	servers := "server.1=10.0.0.11:2888:3888\nserver.2=10.0.0.12:2888:3888\nserver.3=10.0.0.13:2888:3888\n"
	for i, name := range []string{"m1", "m2", "m3"} {
		n, _ := c.NodeByName(name)
		files, err := c.Render(n, zk)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Fatalf("%s: %d files", name, len(files))
		}
		if ok := files[2]; ok.Path != "/opt/drover/packages/zookeeper/3.8.0/bin/zk-mode" || ok.Mode != 0o755 ||
			!strings.Contains(string(ok.Content), "/dev/tcp/"+n.Address+"/2181") {
			t.Errorf("%s: health script %s mode %o:\n%s", name, ok.Path, ok.Mode, ok.Content)
		}
		cfg, myid := string(files[0].Content), string(files[1].Content)
		if files[0].Path != "/opt/drover/packages/zookeeper/3.8.0/conf/zoo.cfg" || files[0].Mode != 0o644 {
			t.Errorf("%s: zoo.cfg at %s mode %o", name, files[0].Path, files[0].Mode)
		}
		for _, want := range []string{servers, "clientPortAddress=" + n.Address + "\n", "admin.enableServer=false\n", "dataDir=/var/lib/zookeeper\n"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s: zoo.cfg lacks %q:\n%s", name, want, cfg)
			}
		}
		if want := fmt.Sprintf("%d\n", i+1); myid != want {
			t.Errorf("%s: myid %q, want %q", name, myid, want)
		}
	}
	// agents get no ZooKeeper files, and the exporter binds to their own address
	a1, _ := c.NodeByName("a1")
	files, err := c.RenderNode(a1)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Component == "zookeeper" {
			t.Errorf("a1 receives %s", f.Path)
		}
	}
}

func TestWriteNodeFilesMarksMissingNewline(t *testing.T) {
	var b bytes.Buffer
	files := []NodeFile{
		{Component: "c", RenderedFile: RenderedFile{Path: "/x", Mode: 0o4755, Content: []byte("no newline")}},
		{Component: "c", RenderedFile: RenderedFile{Path: "/y", Mode: 0o600}},
	}
	if err := WriteNodeFiles(&b, files); err != nil {
		t.Fatal(err)
	}
	want := "==> /x (component c, mode 4755, sha256 " + files[0].Digest() + ") <==\nno newline\n\\ No newline at end of file\n" +
		"==> /y (component c, mode 0600, sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855) <==\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestExecuteCapsOutput(t *testing.T) {
	l, err := Load("../examples/demo/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cluster
	ctx := c.Context(&c.Spec.Nodes[0], &c.Spec.Components[0])
	// 9 nested loops over 3 nodes with a 1 KB body: 20 MB if not capped
	tmpl := strings.Repeat(`{{ range nodesWithRole "master" }}`, 9) + strings.Repeat("x", 1024) + strings.Repeat("{{ end }}", 9)
	if _, err := Execute("big", tmpl, ctx); err != ErrRenderTooLarge {
		t.Fatalf("err = %v, want ErrRenderTooLarge", err)
	}
}

// ConfigHash's bytes are in every receipt on every node: they never
// change, or every node would be reconfigured after an upgrade of drover.
func TestConfigHashIsStable(t *testing.T) {
	got := ConfigHash([]FileDigest{
		{Path: "/opt/drover/etc/x", Mode: 0o4755, SHA256: "aa"},
		{Path: "conf/app.conf", Mode: 0o600, SHA256: "bb"},
		{Path: "z", Mode: 0o7, SHA256: ""},
	})
	if want := "907b9c371ce3588ba63c3264ce831afc7df0980d874be212096f44869fb318da"; got != want {
		t.Errorf("ConfigHash = %s, want %s", got, want)
	}
	for _, m := range []os.FileMode{0, 0o7, 0o644, 0o4755, 0o7777, os.ModeDir | 0o755} {
		if got, want := octalMode(uint32(m&ModeBits)), fmt.Sprintf("%04o", m&ModeBits); got != want {
			t.Errorf("octalMode(%v) = %q, want %q", m, got, want)
		}
	}
}

// TestConfigHashKeepsSpecialModeBits: setuid, setgid and sticky are part
// of the hash, so a manifest that adds one is a reconfigure.
func TestConfigHashKeepsSpecialModeBits(t *testing.T) {
	base := []FileDigest{{Path: "/opt/drover/etc/x", Mode: 0o755, SHA256: "aa"}}
	seen := map[string]os.FileMode{}
	for _, m := range []os.FileMode{0o755, 0o4755, 0o2755, 0o1755} {
		f := base
		f[0].Mode = m
		h := ConfigHash(f)
		if prev, dup := seen[h]; dup {
			t.Errorf("modes %04o and %04o hash the same", prev, m)
		}
		seen[h] = m
	}
}

// TestMembershipContext: .Component.Members is every node the component
// is placed on; rendered for a change of the group it is the group after
// the change, with .Component.Joining and .Member, and the steady
// renderer's cache does not leak into it.
func TestMembershipContext(t *testing.T) {
	c := parseBase(t)
	c.SetDefaults()
	comp := zk(c)
	text := `{{ .Component.Joining }} {{ .Member.Name }}:{{ range .Component.Members }} {{ .Name }}={{ .Address }}{{ end }}`
	r := c.NewRenderer(t.Context())
	m1 := &c.Spec.Nodes[0]
	check := func(r *Renderer, want string) {
		t.Helper()
		out, err := r.Execute("t", text, m1, comp)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Errorf("got %q, want %q", out, want)
		}
	}
	check(r, "false : m1=10.0.0.1 m2=10.0.0.2 m3=10.0.0.3")
	check(r.ForMembership(Membership{Joining: true, Member: "a1", Members: []string{"m1", "m3", "a1"}}), "true a1: m1=10.0.0.1 m3=10.0.0.3 a1=10.0.1.1")
	check(r.ForMembership(Membership{Member: "m2", Members: []string{"m1", "m3"}}), "false m2: m1=10.0.0.1 m3=10.0.0.3")
	check(r, "false : m1=10.0.0.1 m2=10.0.0.2 m3=10.0.0.3")
}

// The renderer validation hands on (Loaded.Renderer) renders with the
// caller's budget and context, not the load's: a load whose context
// ended since still compiles.
func TestLoadedRendererHasItsOwnBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, err := LoadBytesContext(ctx, "x.yaml", []byte(baseManifest))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	r := l.Renderer(context.Background())
	comp := &l.Cluster.Spec.Components[0]
	node := &l.Cluster.Spec.Nodes[0]
	if _, err := r.Execute("new", "{{ .Node.Name }}", node, comp); err != nil {
		t.Fatalf("a template validation did not render: %v", err)
	}
}
