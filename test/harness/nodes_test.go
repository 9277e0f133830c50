package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// assertGone checks, after Close, that nothing of the cluster survives:
// processes (recorded pids, any cmdline naming the state dir, nspawn with our
// machine names), cgroups, the nftables table and the state dir.
func assertGone(t *testing.T, c *Cluster, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if cl := readCmdline(pid); cl != "" {
			t.Errorf("recorded pid %d still alive: %s", pid, cl)
		}
	}
	if left := c.Leftovers(); len(left) > 0 {
		t.Errorf("leftover processes: %v", left)
	}
	names := map[string]bool{}
	for _, n := range c.Nodes {
		names[n.Name] = true
	}
	for _, p := range scanProcs(func(cl string) bool { return strings.Contains(cl, "systemd-nspawn") }) {
		f := strings.Fields(p.Cmdline)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-M" && names[f[i+1]] {
				t.Errorf("nspawn for node %s still running: pid %d", f[i+1], p.PID)
			}
		}
	}
	for _, d := range c.cg.clusterDirs(c.Name) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s still exists", d)
		}
	}
	if _, err := os.Stat(c.Dir); err == nil {
		t.Errorf("state dir %s still exists", c.Dir)
	}
	if tables, _ := listNftTables(c.tools["nft"]); len(tables) > 0 {
		for _, tb := range tables {
			if tb == nftTableName(c.Name) {
				t.Errorf("nftables table %s still exists", tb)
			}
		}
	}
}

// testCtx ends a little before the test binary's deadline, so a slow step
// (a cold image build on a busy machine) fails with its own error and the
// deferred Close still runs.
func testCtx(t *testing.T) context.Context {
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

func TestSystemdNodes(t *testing.T) {
	RequireRoot(t)
	ctx := testCtx(t)

	start := time.Now()
	c, err := BootSystemd(ctx, Options{N: 3, Name: "hs", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	t.Logf("3 systemd nodes booted in %v", time.Since(start).Round(time.Millisecond))
	if len(c.Nodes) != 3 {
		t.Fatalf("got %d nodes", len(c.Nodes))
	}

	// Each node: systemd fully up, its own hostname, its own cgroup tree.
	for _, n := range c.Nodes {
		out, err := c.Exec(ctx, n.Name, "systemctl is-system-running; hostname; cat /proc/1/cgroup")
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if lines[0] != "running" {
			t.Errorf("%s: is-system-running = %q", n.Name, lines[0])
		}
		if len(lines) < 2 || lines[1] != n.Name {
			t.Errorf("%s: hostname = %q", n.Name, lines[1:])
		}
		init, err := containerInit(c.nodes[n.Name])
		if err != nil {
			t.Fatal(err)
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))
		if !strings.Contains(string(cg), "/"+cgroupBase+"/"+c.Name+"/"+n.Name+"/") {
			t.Errorf("%s: init not in the node's own cgroup:\n%s", n.Name, cg)
		}
	}
	// Host keys are per node: known_hosts has three distinct keys.
	kh, _ := os.ReadFile(c.KnownHostsFile)
	keys := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		keys[strings.Fields(l)[2]] = true
	}
	if len(keys) != 3 {
		t.Errorf("known_hosts has %d distinct keys, want 3:\n%s", len(keys), kh)
	}

	// Cut: the node stops answering (timeout, not refusal), others don't care.
	cut := c.Nodes[1].Name
	if err := c.Cut(cut); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.Exec(cctx, cut, "true")
	ccancel()
	if err == nil {
		t.Fatalf("exec on cut node %s succeeded", cut)
	}
	if d := time.Since(t0); d > 6*time.Second {
		t.Errorf("exec on cut node took %v, want it bounded by the 3s context", d)
	}
	if _, err := c.Exec(ctx, c.Nodes[0].Name, "true"); err != nil {
		t.Errorf("uncut node %s: %v", c.Nodes[0].Name, err)
	}
	if err := c.Restore(cut); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, cut, "true"); err != nil {
		t.Fatalf("exec after restore: %v", err)
	}
	if err := c.Restore(cut); err != nil {
		t.Fatalf("second restore: %v", err)
	}

	// StopSSHD: the node is up but refuses SSH; StartSSHD brings it back.
	sn := c.Nodes[0]
	if err := c.StopSSHD(sn.Name); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", hostPort(sn.Address, sn.Port), time.Second); err == nil {
		conn.Close()
		t.Errorf("sshd of %s still accepts after StopSSHD", sn.Name)
	}
	if err := c.StartSSHD(ctx, sn.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, sn.Name, "true"); err != nil {
		t.Fatalf("exec after StartSSHD: %v", err)
	}

	// Kill is a power cut; Start boots the node again with its disk kept.
	kn := c.Nodes[2]
	if _, err := c.Exec(ctx, kn.Name, "echo before > /root/marker && sync"); err != nil {
		t.Fatal(err)
	}
	oldPid := c.procOf(c.nodes[kn.Name]).pid
	if err := c.Kill(kn.Name); err != nil {
		t.Fatal(err)
	}
	if readCmdline(oldPid) != "" {
		t.Errorf("nspawn %d alive after Kill", oldPid)
	}
	if _, err := c.Exec(ctx, kn.Name, "true"); err == nil {
		t.Fatal("exec on killed node succeeded")
	}
	t0 = time.Now()
	if err := c.Start(ctx, kn.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart after kill took %v", time.Since(t0).Round(time.Millisecond))
	if out, err := c.Exec(ctx, kn.Name, "cat /root/marker"); err != nil || strings.TrimSpace(out) != "before" {
		t.Errorf("marker after restart: %q, %v", out, err)
	}

	pids := c.PIDs()
	if len(pids) != 3 {
		t.Errorf("PIDs() = %v, want 3", pids)
	}
	t0 = time.Now()
	err = c.Close()
	closed = true
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("close took %v", time.Since(t0).Round(time.Millisecond))
	assertGone(t, c, pids)
}

func TestLightNodes(t *testing.T) {
	RequireRoot(t)
	ctx := testCtx(t)

	start := time.Now()
	c, err := BootLight(ctx, Options{N: 100, Name: "hl", Logf: t.Logf, ConnectTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	t.Logf("100 light nodes booted in %v", time.Since(start).Round(time.Millisecond))

	// All at once, as drover's pool would: each writes its name into its
	// install root, which must land in that node's private dir only.
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Exec(ctx, n.Name, "true && echo "+n.Name+" > "+DefaultInstallRoot+"/who")
		}()
	}
	wg.Wait()
	t.Logf("100 parallel ssh execs took %v", time.Since(t0).Round(time.Millisecond))
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("%s: %v", c.Nodes[i].Name, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d execs failed", failed, len(c.Nodes))
	}
	for _, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.Root, "who"))
		if err != nil || strings.TrimSpace(string(b)) != n.Name {
			t.Errorf("%s: install root holds %q (%v)", n.Name, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(DefaultInstallRoot, "who")); err == nil {
		t.Errorf("a node's write reached the host's %s", DefaultInstallRoot)
	}

	// Kill takes sessions down with sshd; Start brings the node back.
	kn := c.Nodes[7].Name
	if err := c.Kill(kn); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, kn, "true"); err == nil {
		t.Fatal("exec on killed light node succeeded")
	}
	if err := c.Start(ctx, kn); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Exec(ctx, kn, "cat "+DefaultInstallRoot+"/who"); err != nil || strings.TrimSpace(out) != kn {
		t.Fatalf("after restart: %q, %v", out, err)
	}
	// Cut works for light nodes too.
	if err := c.Cut(kn); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = c.Exec(cctx, kn, "true")
	ccancel()
	if err == nil {
		t.Fatal("exec on cut light node succeeded")
	}
	if err := c.Restore(kn); err != nil {
		t.Fatal(err)
	}

	pids := c.PIDs()
	if len(pids) != 100 {
		t.Errorf("PIDs() has %d entries, want 100", len(pids))
	}
	t0 = time.Now()
	err = c.Close()
	closed = true
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("close took %v", time.Since(t0).Round(time.Millisecond))
	assertGone(t, c, pids)
}

// TestReapStale plays a run that died without Close: the owner recorded in
// cluster.json is made a dead process, and the next Boot must kill the nodes
// and remove everything the dead run held. (The default state dir on
// purpose: addresses are coordinated per state dir, and other test binaries
// may be booting nodes at the same time.)
func TestReapStale(t *testing.T) {
	RequireRoot(t)
	ctx := testCtx(t)

	c, err := BootLight(ctx, Options{N: 2, Name: "hr", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Cut(c.Nodes[0].Name); err != nil {
		t.Fatal(err)
	}
	pids := c.PIDs()

	// A pid that surely belonged to a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rec.OwnerPID = dead.Process.Pid
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(c.Dir, "cluster.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	c2, err := BootLight(ctx, Options{N: 1, Name: "hr", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, pids)
}

func TestArtifacts(t *testing.T) {
	RequireRoot(t)
	ctx := testCtx(t)
	t0 := time.Now()
	arts, err := Artifacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts ready in %v", time.Since(t0).Round(time.Millisecond))

	for k, a := range arts {
		out, err := exec.Command("sha256sum", a.Path).Output()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		actual := strings.Fields(string(out))[0]
		if k == ArtifactWrongChecksum {
			if actual == a.SHA256 {
				t.Errorf("%s: recorded sha256 matches the file", k)
			}
			continue
		}
		if actual != a.SHA256 {
			t.Errorf("%s: recorded sha256 %s, file has %s", k, a.SHA256, actual)
		}
	}

	dir := t.TempDir()
	unpack := func(key string) string {
		d := filepath.Join(dir, key)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xzf", arts[key].Path, "-C", d).CombinedOutput(); err != nil {
			t.Fatalf("unpack %s: %v: %s", key, err, out)
		}
		return d
	}
	for _, k := range []string{ArtifactNodeExporterOld, ArtifactNodeExporterNew} {
		out, err := exec.Command("tar", "-tzf", arts[k].Path).Output()
		if err != nil || strings.Join(strings.Fields(string(out)), " ") != "bin/ bin/node_exporter" {
			t.Errorf("%s: entries %q, %v", k, out, err)
		}
		ver, err := exec.Command(filepath.Join(unpack(k), "bin", "node_exporter"), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(ver), "version "+arts[k].Version+" ") {
			t.Errorf("%s --version: %q, %v", k, ver, err)
		}
	}
	err = exec.Command(filepath.Join(unpack(ArtifactFailing), "bin", "failing")).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("bin/failing: %v, want exit status 1", err)
	}
	if arts[ArtifactZooKeeper].Version == "" || strings.Contains(arts[ArtifactZooKeeper].Version, "-") {
		t.Errorf("zookeeper version %q is not an upstream version", arts[ArtifactZooKeeper].Version)
	}

	// The ZooKeeper launcher, relocated to a temp dir: writes myid into a
	// relative dataDir and serves on the configured loopback address.
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on the host to run ZooKeeper with")
	}
	zk := unpack(ArtifactZooKeeper)
	const addr = "127.0.1.77"
	cfg := "tickTime=2000\ndataDir=data\nclientPort=2181\nclientPortAddress=" + addr + "\n"
	if err := os.WriteFile(filepath.Join(zk, "conf", "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(zk, "conf", "myid"), []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(zk, "bin", "zk-run"))
	logf, _ := os.Create(filepath.Join(dir, "zk.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	}()
	var answer string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		answer = fourLetter(addr+":2181", "srvr")
		if strings.Contains(answer, "Mode: standalone") {
			break
		}
	}
	if !strings.Contains(answer, "Mode: standalone") {
		log, _ := os.ReadFile(filepath.Join(dir, "zk.log"))
		t.Fatalf("zookeeper not serving on %s: %q\n%s", addr, answer, tail(string(log), 3000))
	}
	if myid, err := os.ReadFile(filepath.Join(zk, "data", "myid")); err != nil || strings.TrimSpace(string(myid)) != "7" {
		t.Errorf("dataDir/myid = %q, %v", myid, err)
	}
	if got := fourLetter(addr+":2181", "ruok"); got != "imok" {
		t.Errorf("ruok: %q", got)
	}
	// The admin server is off by default: nothing on 8080 for this JVM.
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:8080", time.Second); err == nil {
		conn.Close()
		out, _ := exec.Command("ss", "-ltnp", "sport = :8080").CombinedOutput()
		if strings.Contains(string(out), "pid="+strconv.Itoa(cmd.Process.Pid)) {
			t.Errorf("zookeeper admin server listening on 8080")
		}
	}
}

// fourLetter sends a ZooKeeper four-letter command and returns the answer.
func fourLetter(addr, cmd string) string {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return ""
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
