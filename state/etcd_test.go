package state

import (
	"context"
	"errors"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/drover-project/drover/internal/etcdtest"
)

// Two clusters on one etcd see only their own records, and a store's
// keys sit under its prefix in etcd.
func TestEtcdPrefixSeparatesClusters(t *testing.T) {
	cli := etcdtest.Start(t, etcdAddr).Client()
	a, _ := NewEtcd(cli, EtcdOptions{Prefix: "/drover/a/state/"})
	b, _ := NewEtcd(cli, EtcdOptions{Prefix: "/drover/ab/state/"})
	if err := a.Put("rollout/halt", []byte("a's")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put("node/x", []byte("b's")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("rollout/halt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b sees a's halt: %v", err)
	}
	if list, _ := a.List(""); len(list) != 1 || list[0].Key != "rollout/halt" {
		t.Fatalf("a lists %q", list)
	}
	resp, err := cli.Get(context.Background(), "/drover/a/state/rollout/halt")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "a's" {
		t.Fatalf("raw etcd key: %v %v", resp, err)
	}
	if _, err := NewEtcd(cli, EtcdOptions{Prefix: "drover/a"}); err == nil {
		t.Fatal("a prefix without slashes was taken")
	}
}

// A guarded store writes only while its guard holds: a deposed leader's
// late write does not land.
func TestEtcdGuardFencesWrites(t *testing.T) {
	cli := etcdtest.Start(t, etcdAddr).Client()
	ctx := context.Background()
	put, err := cli.Put(ctx, "/drover/g/leader", "me")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	guard := func() clientv3.Cmp { return clientv3.Compare(clientv3.CreateRevision("/drover/g/leader"), "=", rev) }
	s, _ := NewEtcd(cli, EtcdOptions{Prefix: "/drover/g/state/", Guard: guard})
	if err := s.Put("rollout/halt", []byte("1")); err != nil {
		t.Fatalf("write while leading: %v", err)
	}
	if _, err := cli.Delete(ctx, "/drover/g/leader"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/drover/g/leader", "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("rollout/halt", []byte("2")); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after losing the lead: %v, want ErrFenced", err)
	}
	if err := s.Delete("rollout/halt"); !errors.Is(err, ErrFenced) {
		t.Fatalf("delete after losing the lead: %v, want ErrFenced", err)
	}
	if v, err := s.Get("rollout/halt"); err != nil || string(v) != "1" {
		t.Fatalf("record after fenced writes = %q, %v; want the leader's 1", v, err)
	}
}
