package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func mustSSHConfig(t *testing.T, text string) *SSHConfig {
	t.Helper()
	sc, err := ParseSSHConfig("test_config", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// testResolver resolves against sc with fixed default identities.
func testResolver(cfg Config, sc *SSHConfig) resolver {
	cfg.SSHConfig = sc
	r := newResolver(cfg)
	r.identities = func() []string { return []string{"/home/op/.ssh/id_ed25519"} }
	return r
}

// TestResolvePrecedence: node fields > cluster ssh: > ssh_config >
// OpenSSH's defaults, setting by setting.
func TestResolvePrecedence(t *testing.T) {
	t.Setenv("HOME", "/home/op")
	sc := mustSSHConfig(t, `
Host web1
  HostName 10.1.0.1
  User sshuser
  Port 2201
  IdentityFile ~/.ssh/web_key
  UserKnownHostsFile ~/.ssh/web_hosts
  ConnectTimeout 7
  ServerAliveInterval 3
Host *
  User everyone
`)
	cluster := Config{User: "cluster", Port: 2300, IdentityFiles: []string{"/cluster/key"},
		KnownHostsFile: "/cluster/known_hosts", ConnectTimeout: 4 * time.Second, KeepAlive: 9 * time.Second}
	node := Target{Name: "w", Address: "web1", User: "nodeuser", Port: 2400,
		IdentityFiles: []string{"/node/key"}, KnownHostsFile: "/node/known_hosts"}

	cases := []struct {
		name   string
		cfg    Config
		target Target
		sc     *SSHConfig
		want   hop
	}{
		{"node fields win", cluster, node, sc, hop{address: "10.1.0.1", user: "nodeuser", port: 2400,
			identityFiles: []string{"/node/key"}, knownHosts: "/node/known_hosts", connectTimeout: 4 * time.Second, keepAlive: 9 * time.Second}},
		{"cluster over ssh_config", cluster, Target{Name: "w", Address: "web1"}, sc, hop{address: "10.1.0.1", user: "cluster", port: 2300,
			identityFiles: []string{"/cluster/key"}, knownHosts: "/cluster/known_hosts", connectTimeout: 4 * time.Second, keepAlive: 9 * time.Second}},
		{"ssh_config over defaults", Config{}, Target{Name: "w", Address: "web1"}, sc, hop{address: "10.1.0.1", user: "sshuser", port: 2201,
			identityFiles: []string{"/home/op/.ssh/web_key"}, knownHosts: "/home/op/.ssh/web_hosts", connectTimeout: 7 * time.Second, keepAlive: 3 * time.Second}},
		{"Host * applies to others", Config{}, Target{Name: "o", Address: "10.9.9.9"}, sc, hop{address: "10.9.9.9", user: "everyone", port: 22,
			identityFiles: []string{"/home/op/.ssh/id_ed25519"}, knownHosts: "/home/op/.ssh/known_hosts", connectTimeout: DefaultConnectTimeout, keepAlive: DefaultKeepAlive}},
		{"defaults without ssh_config", Config{}, Target{Name: "o", Address: "10.9.9.9"}, nil, hop{address: "10.9.9.9", user: "root", port: 22,
			identityFiles: []string{"/home/op/.ssh/id_ed25519"}, knownHosts: "/home/op/.ssh/known_hosts", connectTimeout: DefaultConnectTimeout, keepAlive: DefaultKeepAlive}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hops, err := testResolver(tc.cfg, tc.sc).route(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			got := hops[len(hops)-1]
			got.label, got.alias = "", ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestResolveJumps(t *testing.T) {
	sc := mustSSHConfig(t, `
Host inner
  HostName 10.0.0.5
  ProxyJump outer
Host outer
  HostName 192.0.2.1
  User jumper
  Port 2022
  IdentityFile /keys/outer
Host deep
  ProxyJump me@hop1:2200,hop2
Host loopa
  ProxyJump loopb
Host loopb
  ProxyJump loopa
Host self
  ProxyJump self
Host direct
  ProxyJump none
`)
	route := func(cfg Config, t0 Target) ([]hop, error) { return testResolver(cfg, sc).route(t0) }
	addrs := func(hops []hop) string {
		var s []string
		for _, h := range hops {
			s = append(s, h.key())
		}
		return strings.Join(s, " > ")
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		target Target
		want   string
	}{
		{"ssh_config chain through the first hop's own ProxyJump", Config{}, Target{Name: "n", Address: "10.0.0.9", Jump: []Bastion{{Address: "inner"}}},
			"jumper@192.0.2.1:2022 > root@10.0.0.5:22 > root@10.0.0.9:22"},
		{"node address is an alias with a comma chain", Config{}, Target{Name: "n", Address: "deep"},
			"me@hop1:2200 > root@hop2:22 > root@deep:22"},
		{"cluster bastion", Config{Bastion: &Bastion{Address: "b", User: "bu"}}, Target{Name: "n", Address: "10.0.0.9"},
			"bu@b:22 > root@10.0.0.9:22"},
		{"node jump overrides the cluster's", Config{Bastion: &Bastion{Address: "b"}}, Target{Name: "n", Address: "10.0.0.9", Jump: []Bastion{{Address: "x", Port: 2}, {Address: "y"}}},
			"root@x:2 > root@y:22 > root@10.0.0.9:22"},
		{"cluster bastion overrides ssh_config", Config{Bastion: &Bastion{Address: "b"}}, Target{Name: "n", Address: "deep"},
			"root@b:22 > root@deep:22"},
		{"ProxyJump none", Config{}, Target{Name: "n", Address: "direct"}, "root@direct:22"},
	} {
		hops, err := route(tc.cfg, tc.target)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := addrs(hops); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	hops, _ := route(Config{}, Target{Name: "n", Address: "10.0.0.9", Jump: []Bastion{{Address: "outer"}}})
	if !reflect.DeepEqual(hops[0].identityFiles, []string{"/keys/outer"}) {
		t.Errorf("jump host's own IdentityFile from ssh_config: %v", hops[0].identityFiles)
	}
	for _, alias := range []string{"loopa", "self"} {
		if _, err := route(Config{}, Target{Name: "n", Address: alias}); err == nil || !strings.Contains(err.Error(), "ProxyJump loop") {
			t.Errorf("%s: want a ProxyJump loop error, got %v", alias, err)
		}
	}
}

func TestResolveRefusesLooserHostKeyChecks(t *testing.T) {
	sc := mustSSHConfig(t, `
Host lax
  StrictHostKeyChecking no
Host nullkh
  UserKnownHostsFile /dev/null
Host strict
  StrictHostKeyChecking yes
Host new
  StrictHostKeyChecking accept-new
`)
	for alias, want := range map[string]string{"lax": "never accepts an unchecked host key", "nullkh": "never skips host-key checks"} {
		_, err := testResolver(Config{}, sc).route(Target{Name: "n", Address: alias})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "test_config") {
			t.Errorf("%s: want an error saying %q and naming the file, got %v", alias, want, err)
		}
	}
	accept := Config{AcceptNewHostKeys: true}
	if hops, _ := testResolver(accept, sc).route(Target{Address: "strict"}); hops[0].acceptNew {
		t.Error("StrictHostKeyChecking yes must tighten acceptNewHostKeys")
	}
	if hops, _ := testResolver(Config{}, sc).route(Target{Address: "new"}); hops[0].acceptNew {
		t.Error("StrictHostKeyChecking accept-new must not loosen a strict cluster")
	}
}

func TestSSHConfigFiles(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	log := zaptest.NewLogger(t)
	os.MkdirAll(filepath.Join(home, ".ssh", "conf.d"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "conf.d", "lab"), []byte("Host lab-*\n  User labuser\nHost !lab-x lab-?\n  Port 2222\n"), 0o600)
	main := filepath.Join(home, ".ssh", "config")
	// A relative Include is read from the account's home as passwd has it
	// (as OpenSSH does), not $HOME: this test names it absolutely.
	os.WriteFile(main, []byte("Include "+filepath.Join(home, ".ssh", "conf.d", "*")+"\nMatch host m*\n  User matched\n"), 0o600)
	sc, err := LoadSSHConfig("~/.ssh/config", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.get("lab-1", "User"); got != "labuser" {
		t.Errorf("Include + pattern: User %q", got)
	}
	if got := sc.get("lab-1", "Port"); got != "2222" {
		t.Errorf("pattern: Port %q", got)
	}
	if got := sc.get("lab-x", "Port"); got != "" {
		t.Errorf("negated pattern: Port %q", got)
	}
	if got := sc.get("m1", "User"); got != "matched" {
		t.Errorf("Match host: User %q", got)
	}

	// Missing or unreadable: ignored, with one warning when it was named.
	core, logs := observer.New(zap.WarnLevel)
	if sc, err := LoadSSHConfig(filepath.Join(home, "nope"), zap.New(core)); err != nil || sc.get("x", "User") != "" {
		t.Errorf("missing config: %v", err)
	}
	if logs.Len() != 1 {
		t.Errorf("missing named config: %d warnings, want 1", logs.Len())
	}
	if _, err := LoadSSHConfig(DefaultSSHConfigFile, zap.New(core)); err != nil || logs.Len() != 1 {
		t.Errorf("missing ~/.ssh/config: %v, %d warnings, want none more", err, logs.Len())
	}
	// Syntax error: names file and line.
	bad := filepath.Join(home, "bad")
	os.WriteFile(bad, []byte("Host ok\n  User u\nMatch exec \"true\"\n"), 0o600)
	if _, err := LoadSSHConfig(bad, log); err == nil || !strings.Contains(err.Error(), bad+":3:") {
		t.Errorf("want an error naming %s:3, got %v", bad, err)
	}
}
