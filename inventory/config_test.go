package inventory

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/drover-project/drover/manifests"
)

func TestConfigFromManifest(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg, err := ConfigFromManifest(manifests.SSH{
		User:              "core",
		IdentityFiles:     []string{"~/.ssh/id_ed25519", "/etc/drover/key"},
		KnownHostsFile:    "~/.drover/known_hosts",
		AcceptNewHostKeys: true,
		Bastion:           &manifests.Bastion{Address: "jump.example"},
		ConnectTimeout:    "3s",
		Concurrency:       16,
	})
	if err != nil {
		t.Fatal(err)
	}
	// What the manifest leaves unset stays unset: the pool resolves it
	// per node from ssh_config and defaults (see TestResolvePrecedence).
	want := Config{
		User:              "core",
		IdentityFiles:     []string{filepath.Join(home, ".ssh/id_ed25519"), "/etc/drover/key"},
		KnownHostsFile:    filepath.Join(home, ".drover/known_hosts"),
		AcceptNewHostKeys: true,
		Bastion:           &Bastion{Address: "jump.example"},
		ConnectTimeout:    3 * time.Second,
		Concurrency:       16,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}

	cfg, err = ConfigFromManifest(manifests.SSH{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Config{}) {
		t.Errorf("an empty ssh section: %+v, want a zero Config", cfg)
	}

	for _, bad := range []manifests.SSH{{ConnectTimeout: "soon"}, {ConnectTimeout: "-1s"}, {Concurrency: -1}} {
		if _, err := ConfigFromManifest(bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func TestTargetsFromManifest(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	roleJump := []manifests.Bastion{{Address: "j1"}, {Address: "j2", IdentityFiles: []string{"~/j2key"}}}
	c := &manifests.Cluster{Spec: manifests.Spec{
		SSH: manifests.SSH{User: "core", Port: 2222, Roles: map[string]manifests.Access{
			"edge": {Jump: roleJump, KnownHostsFile: "~/edge_hosts"},
		}},
		Nodes: []manifests.Node{
			{Name: "m1", Address: "10.0.0.11", Roles: []string{"master"}},
			{Name: "a1", Address: "10.0.1.21", Port: 22, User: "root"},
			{Name: "e1", Address: "e1", Roles: []string{"edge"}},
			{Name: "e2", Address: "e2", Roles: []string{"edge"}, Access: manifests.Access{
				Bastion: &manifests.Bastion{Address: "own"}, IdentityFiles: []string{"/k"}}},
		},
	}}
	got := TargetsFromManifest(c)
	want := []Target{
		{Name: "m1", Address: "10.0.0.11"},
		{Name: "a1", Address: "10.0.1.21", Port: 22, User: "root"},
		{Name: "e1", Address: "e1", KnownHostsFile: filepath.Join(home, "edge_hosts"),
			Jump: []Bastion{{Address: "j1"}, {Address: "j2", IdentityFiles: []string{filepath.Join(home, "j2key")}}}},
		{Name: "e2", Address: "e2", IdentityFiles: []string{"/k"}, KnownHostsFile: filepath.Join(home, "edge_hosts"),
			Jump: []Bastion{{Address: "own"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
