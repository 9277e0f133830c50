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
	want := Config{
		IdentityFiles:     []string{filepath.Join(home, ".ssh/id_ed25519"), "/etc/drover/key"},
		KnownHostsFile:    filepath.Join(home, ".drover/known_hosts"),
		AcceptNewHostKeys: true,
		Bastion:           &Bastion{Address: "jump.example", Port: 22, User: "core"},
		ConnectTimeout:    3 * time.Second,
		KeepAlive:         DefaultKeepAlive,
		IdleTimeout:       DefaultIdleTimeout,
		Concurrency:       16,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}

	cfg, err = ConfigFromManifest(manifests.SSH{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnectTimeout != DefaultConnectTimeout || cfg.Concurrency != DefaultConcurrency || cfg.KnownHostsFile != filepath.Join(home, ".ssh/known_hosts") {
		t.Errorf("defaults not applied: %+v", cfg)
	}

	for _, bad := range []manifests.SSH{{ConnectTimeout: "soon"}, {ConnectTimeout: "-1s"}, {Concurrency: -1}} {
		if _, err := ConfigFromManifest(bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func TestTargetsFromManifest(t *testing.T) {
	c := &manifests.Cluster{Spec: manifests.Spec{
		SSH: manifests.SSH{User: "core", Port: 2222},
		Nodes: []manifests.Node{
			{Name: "m1", Address: "10.0.0.11", Roles: []string{"master"}},
			{Name: "a1", Address: "10.0.1.21", Port: 22, User: "root"},
		},
	}}
	got := TargetsFromManifest(c)
	want := []Target{
		{Name: "m1", Address: "10.0.0.11", Port: 2222, User: "core"},
		{Name: "a1", Address: "10.0.1.21", Port: 22, User: "root"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	c.Spec.SSH = manifests.SSH{}
	if got := TargetsFromManifest(c)[0]; got.Port != 22 || got.User != "root" {
		t.Errorf("undefaulted manifest: %+v", got)
	}
}
