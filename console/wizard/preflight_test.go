package wizard

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

// sshNode is an in-process SSH server that accepts a fresh client key,
// with a setup that points at it (the commands run on this machine).
func sshNode(t *testing.T, f *fixture) (*sshtest.Server, Setup) {
	t.Helper()
	key := sshtest.WriteClientKey(t, t.TempDir(), "id_ed25519", "")
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{key.Signer.PublicKey()}})
	s := Setup{
		Cluster:     "lab",
		InstallRoot: missingRoot(t),
		SSH:         SSHSetup{User: "root", Port: srv.Port(), IdentityFile: key.Path},
		Nodes:       []NodeSetup{{Name: "n1", Address: srv.Host(), Roles: []string{"master"}}},
	}
	return srv, s
}

// missingRoot is an install root that does not exist below one that does,
// so the disk check has to walk up.
func missingRoot(t *testing.T) string { return t.TempDir() + "/not/yet/there" }

func checkOf(t *testing.T, n NodeReport, name string) Check {
	t.Helper()
	for _, c := range n.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("node %s has no %q check: %+v", n.Name, name, n.Checks)
	return Check{}
}

func TestPreflightUnknownKeyThenAcceptThenFacts(t *testing.T) {
	f := newFixture(t, nil)
	srv, s := sshNode(t, f)
	// A component whose health port is the SSH server's own: in use.
	s.Components = []ComponentSetup{{Name: "svc", Version: "1.0", Artifact: "zookeeper-3.8.0.tar.gz",
		Exec: "/bin/true", Health: HealthSetup{Kind: "tcp", Port: srv.Port()}}}

	var rep PreflightReport
	if code := f.post(t, "/api/v1/wizard/preflight", s, &rep); code != 200 {
		t.Fatalf("preflight: %d", code)
	}
	n := rep.Nodes[0]
	if n.HostKey == nil || n.HostKey.Status != KeyUnknown || n.HostKey.Fingerprint != ssh.FingerprintSHA256(srv.HostKey()) {
		t.Fatalf("host key: %+v, want unknown %s", n.HostKey, ssh.FingerprintSHA256(srv.HostKey()))
	}
	if c := checkOf(t, n, "host key"); c.Status != Warn || !strings.Contains(c.Message, "ssh_host_ed25519_key.pub") {
		t.Errorf("host key check: %+v", c)
	}
	if c := checkOf(t, n, "login"); c.Status != Skip {
		t.Errorf("login before the key is trusted: %+v", c)
	}
	if st := srv.Stats(); st.Authenticated != 0 || st.Sessions != 0 {
		t.Errorf("the untrusted host got a login (%+v)", st)
	}

	// Accepting a fingerprint other than the one shown is refused.
	if code := f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: n.HostPort, Fingerprint: "SHA256:forged"}, nil); code != 409 {
		t.Errorf("accept of a forged fingerprint: %d, want 409", code)
	}
	if code := f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: "127.0.0.1:1", Fingerprint: n.HostKey.Fingerprint}, nil); code != 404 {
		t.Errorf("accept for a host never seen: %d, want 404", code)
	}
	var acc map[string]any
	if code := f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: n.HostPort, Fingerprint: n.HostKey.Fingerprint}, &acc); code != 200 || acc["added"] != true {
		t.Fatalf("accept: %d %v", code, acc)
	}
	data, err := os.ReadFile(f.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if want := sshtest.KnownHostsLine(srv.Addr(), srv.HostKey()) + "\n"; string(data) != want {
		t.Errorf("known_hosts:\n%q\nwant\n%q", data, want)
	}
	// Accepting again adds nothing.
	f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: n.HostPort, Fingerprint: n.HostKey.Fingerprint}, &acc)
	if again, _ := os.ReadFile(f.knownHosts); string(again) != string(data) || acc["added"] != false {
		t.Errorf("second accept changed known_hosts or says added: %v\n%s", acc, again)
	}

	rep = PreflightReport{}
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	n = rep.Nodes[0]
	if n.HostKey.Status != KeyKnown {
		t.Fatalf("after accept: %+v", n.HostKey)
	}
	for _, name := range []string{"reachable", "host key", "login", "os", "disk", "clock"} {
		if c := checkOf(t, n, name); c.Status != Pass {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := checkOf(t, n, "ports"); c.Status != Fail || !strings.Contains(c.Message, "in use") {
		t.Errorf("ports: %+v, want the SSH server's port in use", c)
	}
	if n.Facts == nil || n.Facts.Kernel != "Linux" || n.Facts.Arch == "" || n.Facts.DiskFreeBytes <= 0 {
		t.Fatalf("facts: %+v", n.Facts)
	}
	if want := strings.TrimSuffix(s.InstallRoot, "/not/yet/there"); n.Facts.DiskPath != want {
		t.Errorf("disk path %q, want the nearest existing parent %q", n.Facts.DiskPath, want)
	}
	if st := srv.Stats(); st.Sessions != 1 {
		t.Errorf("preflight ran %d sessions, want one", st.Sessions)
	}
}

func TestPreflightChangedKeyIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	srv, s := sshNode(t, f)
	other := sshtest.NewSigner(t).PublicKey()
	if err := os.MkdirAll(f.dir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.AppendKnownHosts(t, f.knownHosts, sshtest.KnownHostsLine(srv.Addr(), other))
	before, _ := os.ReadFile(f.knownHosts)

	var rep PreflightReport
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	n := rep.Nodes[0]
	if n.HostKey == nil || n.HostKey.Status != KeyChanged || len(n.HostKey.Known) != 1 || !strings.Contains(n.HostKey.Known[0], ssh.FingerprintSHA256(other)) {
		t.Fatalf("host key: %+v", n.HostKey)
	}
	c := checkOf(t, n, "host key")
	if c.Status != Fail || !strings.Contains(c.Message, ssh.FingerprintSHA256(other)) || !strings.Contains(c.Message, n.HostKey.Fingerprint) {
		t.Errorf("changed key check should name both fingerprints: %+v", c)
	}
	var resp map[string]any
	if code := f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: n.HostPort, Fingerprint: n.HostKey.Fingerprint}, &resp); code != 409 {
		t.Errorf("accepting a changed key: %d %v, want 409", code, resp)
	}
	if after, _ := os.ReadFile(f.knownHosts); string(after) != string(before) {
		t.Errorf("known_hosts changed:\n%s", after)
	}
}

func TestPreflightUnreachableAndBadKey(t *testing.T) {
	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	s := Setup{Cluster: "lab", SSH: SSHSetup{User: "root", Port: addr.Port, IdentityFile: f.dir + "/no-such-key"},
		Nodes: []NodeSetup{{Name: "gone", Address: "127.0.0.1"}}}
	var rep PreflightReport
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	n := rep.Nodes[0]
	if c := checkOf(t, n, "reachable"); c.Status != Fail {
		t.Errorf("reachable: %+v", c)
	}
	if c := checkOf(t, n, "clock"); c.Status != Skip {
		t.Errorf("clock on an unreachable node: %+v", c)
	}
	if rep.Counts[Fail] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
}

func TestPreflightClockSkew(t *testing.T) {
	// Our clock 45s behind: the node looks 45s ahead.
	f := newFixture(t, func(o *Options) { o.Now = func() time.Time { return time.Now().Add(-45 * time.Second) } })
	srv, s := sshNode(t, f)
	if err := os.MkdirAll(f.dir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.AppendKnownHosts(t, f.knownHosts, sshtest.KnownHostsLine(srv.Addr(), srv.HostKey()))
	var rep PreflightReport
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	c := checkOf(t, rep.Nodes[0], "clock")
	// The estimate is off by up to half a round trip, which a loaded
	// machine stretches: 45s give or take one.
	var skew float64
	if _, err := fmt.Sscanf(c.Message, "node clock is %fs", &skew); err != nil || skew < 44 || skew > 46 || c.Status != Fail {
		t.Errorf("clock: %+v (skew %v, %v)", c, skew, err)
	}
}

// TestPreflightForeignOutput: a node whose sh prints something else (a
// banner, a restricted shell) fails the login check with what it said,
// and nothing is guessed from it.
func TestPreflightForeignOutput(t *testing.T) {
	f := newFixture(t, nil)
	fake := t.TempDir()
	script := "#!/bin/sh\necho 'Welcome to the jump box'\necho 'restricted shell' >&2\nexit 3\n"
	if err := os.WriteFile(fake+"/sh", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	key := sshtest.WriteClientKey(t, t.TempDir(), "id_ed25519", "")
	srv := sshtest.Start(t, sshtest.Options{
		AuthorizedKeys: []ssh.PublicKey{key.Signer.PublicKey()},
		Env:            []string{"PATH=" + fake + ":/usr/bin:/bin"},
	})
	if err := os.MkdirAll(f.dir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.AppendKnownHosts(t, f.knownHosts, sshtest.KnownHostsLine(srv.Addr(), srv.HostKey()))
	s := Setup{Cluster: "lab", SSH: SSHSetup{User: "root", Port: srv.Port(), IdentityFile: key.Path},
		Nodes: []NodeSetup{{Name: "n1", Address: srv.Host()}}}
	var rep PreflightReport
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	n := rep.Nodes[0]
	c := checkOf(t, n, "login")
	if c.Status != Fail || !strings.Contains(c.Message, "exited 3") || !strings.Contains(c.Message, "restricted shell") {
		t.Errorf("login: %+v", c)
	}
	if n.Facts != nil {
		t.Errorf("facts from foreign output: %+v", n.Facts)
	}
	if c := checkOf(t, n, "os"); c.Status != Skip {
		t.Errorf("os: %+v", c)
	}
}

// TestPreflightDeadNodeCostsOneConnectTimeout: a node that never answers
// (packets dropped) fails reachable after ConnectTimeout, and does not
// hold up the others.
func TestPreflightDeadNodeCostsOneConnectTimeout(t *testing.T) {
	var dialed atomic.Int32
	f := newFixture(t, func(o *Options) {
		o.ConnectTimeout = 300 * time.Millisecond
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Add(1)
			<-ctx.Done() // a black hole
			return nil, ctx.Err()
		}
	})
	s := threeNodeSetup()
	start := time.Now()
	var rep PreflightReport
	f.post(t, "/api/v1/wizard/preflight", s, &rep)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("three dead nodes took %v: they are not checked at once", took)
	}
	if dialed.Load() != 3 || len(rep.Nodes) != 3 {
		t.Fatalf("dialed %d, %d reports", dialed.Load(), len(rep.Nodes))
	}
	for _, n := range rep.Nodes {
		if c := checkOf(t, n, "reachable"); c.Status != Fail || !strings.Contains(c.Message, "deadline") {
			t.Errorf("%s reachable: %+v", n.Name, c)
		}
	}
}

// TestPreflightThroughBastion: preflight reaches a node only through a
// forwarding bastion, over inventory's transport. The bastion's key is
// shown and accepted first (nothing goes past an untrusted bastion), then
// the node's, then the facts come through the tunnel.
func TestPreflightThroughBastion(t *testing.T) {
	f := newFixture(t, nil)
	srv, s := sshNode(t, f)
	key, err := os.ReadFile(s.SSH.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	bastion := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	s.SSH.Bastion = "jump@" + bastion.Addr()

	preflight := func() NodeReport {
		t.Helper()
		var rep PreflightReport
		if code := f.post(t, "/api/v1/wizard/preflight", s, &rep); code != 200 {
			t.Fatalf("preflight: %d", code)
		}
		return rep.Nodes[0]
	}
	accept := func(n NodeReport) {
		t.Helper()
		if code := f.post(t, "/api/v1/wizard/hostkeys/accept", AcceptRequest{HostPort: n.HostKey.HostPort, Fingerprint: n.HostKey.Fingerprint}, nil); code != 200 {
			t.Fatalf("accept %s: %d", n.HostKey.HostPort, code)
		}
	}

	n := preflight()
	if n.HostKey == nil || n.HostKey.HostPort != bastion.Addr() || n.HostKey.Status != KeyUnknown || n.HostKey.Fingerprint != ssh.FingerprintSHA256(bastion.HostKey()) {
		t.Fatalf("first preflight: host key %+v, want the bastion's, unknown", n.HostKey)
	}
	if c := checkOf(t, n, "host key"); c.Status != Warn || !strings.Contains(c.Message, "jump host "+bastion.Addr()) {
		t.Errorf("host key check: %+v", c)
	}
	if bastion.Stats().Authenticated != 0 || srv.Stats().Accepted != 0 {
		t.Fatalf("went past an untrusted bastion: bastion %+v node %+v", bastion.Stats(), srv.Stats())
	}
	accept(n)

	n = preflight()
	if n.HostKey == nil || n.HostKey.HostPort != srv.Addr() || n.HostKey.Status != KeyUnknown {
		t.Fatalf("second preflight: host key %+v, want the node's, unknown; checks %+v", n.HostKey, n.Checks)
	}
	accept(n)

	n = preflight()
	for _, name := range []string{"reachable", "host key", "login", "os", "disk", "clock"} {
		if c := checkOf(t, n, name); c.Status != Pass {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if st := bastion.Stats(); st.DirectTCPIP != 2 || st.Sessions != 0 {
		t.Errorf("bastion %+v: want the node reached through it twice, no session on it", st)
	}
	if st := srv.Stats(); st.Sessions != 1 {
		t.Errorf("node %+v: want one preflight session", st)
	}
}
