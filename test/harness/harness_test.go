package harness

import (
	"bufio"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Every process wait goroutine must be gone once the clusters are closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseNftElements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"table inet t {\n\tset cut {\n\t\ttype ipv4_addr\n\t}\n}\n", ""},
		{"table inet t {\n\tset cut {\n\t\ttype ipv4_addr\n\t\telements = { 127.0.2.1 }\n\t}\n}\n", "127.0.2.1"},
		{"\t\telements = { 127.0.2.1, 127.0.2.3,\n\t\t\t     127.0.10.7 }\n", "127.0.2.1 127.0.2.3 127.0.10.7"},
	} {
		if got := strings.Join(parseNftElements(tc.in), " "); got != tc.want {
			t.Errorf("parseNftElements(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseNftTables(t *testing.T) {
	out := "table inet filter\ntable inet drover_test_dt_ab12\ntable inet drover_test_x\n"
	got := strings.Join(parseNftTables(out), " ")
	if got != "drover_test_dt_ab12 drover_test_x" {
		t.Fatalf("parseNftTables = %q", got)
	}
	if nftTableName("dt-ab12") != "drover_test_dt_ab12" {
		t.Fatalf("nftTableName = %q", nftTableName("dt-ab12"))
	}
}

func TestParseMountinfoLine(t *testing.T) {
	mnt, fstype, opts, ok := parseMountinfoLine("35 25 0:30 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd")
	if !ok || mnt != "/sys/fs/cgroup/systemd" || fstype != "cgroup" || !hasOpt(opts, "name=systemd") {
		t.Fatalf("got %q %q %q %v", mnt, fstype, opts, ok)
	}
	mnt, _, _, ok = parseMountinfoLine(`99 1 0:50 / /var/tmp/a\040b rw - tmpfs tmpfs rw`)
	if !ok || mnt != "/var/tmp/a b" {
		t.Fatalf("escaped mount point: got %q", mnt)
	}
	if _, _, _, ok := parseMountinfoLine("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}

func TestAllocAddresses(t *testing.T) {
	used := map[string]bool{"127.0.2.1": true, "127.0.2.3": true}
	got := allocAddresses(KindSystemd, 3, used)
	if strings.Join(got, " ") != "127.0.2.2 127.0.2.4 127.0.2.5" {
		t.Fatalf("systemd: %v", got)
	}
	got = allocAddresses(KindLight, 252, nil)
	if got[0] != "127.0.10.1" || got[249] != "127.0.10.250" || got[250] != "127.0.11.1" || len(got) != 252 {
		t.Fatalf("light: first %s, 250th %s, 251st %s, len %d", got[0], got[249], got[250], len(got))
	}
	if n := len(allocAddresses(KindSystemd, 10000, nil)); n != poolSize(KindSystemd) {
		t.Fatalf("systemd pool: got %d addresses, want %d", n, poolSize(KindSystemd))
	}
}

func TestNodesYAML(t *testing.T) {
	c := &Cluster{Nodes: []Node{
		{Name: "dt-1", Address: "127.0.2.1", Port: 22},
		{Name: "dt-2", Address: "127.0.2.2", Port: 22},
	}}
	got := c.NodesYAML(func(i int) []string {
		if i == 0 {
			return []string{"master", "agent"}
		}
		return nil
	})
	want := `nodes:
  - name: dt-1
    address: 127.0.2.1
    port: 22
    roles: [master, agent]
  - name: dt-2
    address: 127.0.2.2
    port: 22
`
	if got != want {
		t.Fatalf("NodesYAML:\n%s\nwant:\n%s", got, want)
	}
	if got := Indent("a:\n  b: 1\n\nc: 2\n", 2); got != "  a:\n    b: 1\n\n  c: 2\n" {
		t.Fatalf("Indent: %q", got)
	}
}

func TestKnownHostsLine(t *testing.T) {
	k, err := newKeyPair("root@n1")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(k.public)
	if len(f) != 3 || f[0] != "ssh-ed25519" || f[2] != "root@n1" {
		t.Fatalf("public key line %q", k.public)
	}
	if got := knownHostsLine("127.0.2.1", 22, k); got != "127.0.2.1 ssh-ed25519 "+f[1] {
		t.Fatalf("port 22: %q", got)
	}
	if got := knownHostsLine("127.0.2.1", 2222, k); !strings.HasPrefix(got, "[127.0.2.1]:2222 ssh-ed25519 ") {
		t.Fatalf("port 2222: %q", got)
	}
	if !strings.HasPrefix(string(k.private), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Fatalf("private key is not in OpenSSH format")
	}
}

func TestParseArtifactIndex(t *testing.T) {
	sha := strings.Repeat("a", 64)
	var lines []string
	for _, k := range []string{ArtifactNodeExporterOld, ArtifactNodeExporterNew, ArtifactZooKeeper, ArtifactFailing, ArtifactWrongChecksum} {
		lines = append(lines, k+"\t1.0\t"+sha+"\t/c/"+k+".tar.gz")
	}
	arts, err := parseArtifactIndex(bufio.NewScanner(strings.NewReader(strings.Join(lines, "\n") + "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if a := arts[ArtifactZooKeeper]; a.Path != "/c/zookeeper.tar.gz" || a.SHA256 != sha || a.Version != "1.0" {
		t.Fatalf("zookeeper: %+v", a)
	}
	if _, err := parseArtifactIndex(bufio.NewScanner(strings.NewReader(strings.Join(lines[1:], "\n")))); err == nil {
		t.Fatal("index missing an artifact parsed without error")
	}
	if _, err := parseArtifactIndex(bufio.NewScanner(strings.NewReader("x\t1\tshort\t/p\n"))); err == nil {
		t.Fatal("bad sha256 parsed without error")
	}
}

func TestProcStartTime(t *testing.T) {
	a, ok := procStartTime(1)
	if !ok {
		t.Fatal("no start time for pid 1")
	}
	rec := clusterRecord{OwnerPID: 1, OwnerStart: a}
	if !rec.ownerAlive() {
		t.Fatal("pid 1 with its own start time not alive")
	}
	rec.OwnerStart++
	if rec.ownerAlive() {
		t.Fatal("pid 1 with another start time counted as alive (pid reuse not detected)")
	}
}
