package state

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/drover-project/drover/internal/etcdtest"
)

// stores runs a test against every implementation: they keep one contract.
func stores(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("bolt", func(t *testing.T) {
		b, err := OpenBolt(filepath.Join(t.TempDir(), "state.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		f(t, b)
	})
	t.Run("memory", func(t *testing.T) { f(t, NewMemory()) })
	t.Run("etcd", func(t *testing.T) {
		cli := etcdtest.Start(t, etcdAddr).Client()
		e, err := NewEtcd(cli, EtcdOptions{Prefix: "/drover/test/state/"})
		if err != nil {
			t.Fatal(err)
		}
		f(t, e)
	})
}

// etcdAddr is this package's etcd member (the state tests' own loopback
// address).
const etcdAddr = "127.5.1.1"

func TestStoreContract(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		if _, err := s.Get("node/a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
		}
		for _, r := range []Record{{"node/b", []byte("2")}, {"node/a", []byte("1")}, {"rollout/halt", []byte("h")}, {"nodes", []byte("x")}} {
			if err := s.Put(r.Key, r.Value); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Put("node/a", []byte("1b")); err != nil {
			t.Fatal(err)
		}
		v, err := s.Get("node/a")
		if err != nil || string(v) != "1b" {
			t.Fatalf("Get after overwrite = %q, %v", v, err)
		}
		v[0] = 'X' // the caller owns what it got
		if v, _ := s.Get("node/a"); string(v) != "1b" {
			t.Fatalf("changing a returned value changed the store: %q", v)
		}
		list, err := s.List("node/")
		if err != nil {
			t.Fatal(err)
		}
		want := []Record{{"node/a", []byte("1b")}, {"node/b", []byte("2")}}
		if !slices.EqualFunc(list, want, func(a, b Record) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			t.Fatalf("List(node/) = %q, want %q", list, want)
		}
		if err := s.Delete("node/a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete("node/never"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
		if _, err := s.Get("node/a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if list, _ := s.List(""); len(list) != 3 {
			t.Fatalf("List(\"\") = %q, want 3 records", list)
		}
	})
}

func TestBoltKeepsRecordsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	b, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put("rollout/halt", []byte("why")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open while held: %v, want ErrLocked", err)
	}
	b.Close()
	b, err = OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v, err := b.Get("rollout/halt"); err != nil || string(v) != "why" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
}
