package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd is a Store in etcd, under one key prefix per cluster, so several
// daemons (one leader, standbys) share one state: a halt set by one
// survives its death. Every Put and Delete is one etcd write, durable on
// a quorum of members once it returns.
type Etcd struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	guard   func() clientv3.Cmp
	reads   []clientv3.OpOption
}

var _ Store = (*Etcd)(nil)

// ErrFenced is returned by a write whose guard no longer holds: the
// daemon that made it is not the leader any more, and what it decided
// must not overwrite what the new leader decides.
var ErrFenced = errors.New("write refused: this daemon no longer leads")

// EtcdOptions configure an Etcd store.
type EtcdOptions struct {
	// Prefix is put before every key ("/drover/<cluster>/state/").
	Prefix string
	// Timeout bounds each request (default 5s): a store that cannot
	// reach a quorum fails the call, it does not hang the controller.
	Timeout time.Duration
	// Guard, if set, is a comparison every write is made conditional on
	// in one transaction (the leader key's revision, see package ha).
	Guard func() clientv3.Cmp
	// Serializable reads answer from the member asked, without a round
	// of its quorum: a reader (a standby showing the shared history)
	// still sees what a member has while etcd has no quorum.
	Serializable bool
}

// NewEtcd is a store on cli, which the caller keeps and closes.
func NewEtcd(cli *clientv3.Client, o EtcdOptions) (*Etcd, error) {
	if !strings.HasSuffix(o.Prefix, "/") || !strings.HasPrefix(o.Prefix, "/") {
		return nil, fmt.Errorf("state: etcd prefix %q must start and end with /", o.Prefix)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	e := &Etcd{cli: cli, prefix: o.Prefix, timeout: o.Timeout, guard: o.Guard}
	if o.Serializable {
		e.reads = []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return e, nil
}

// Prefix is the store's key prefix in etcd.
func (e *Etcd) Prefix() string { return e.prefix }

// Path names the store in messages, as Bolt's file does.
func (e *Etcd) Path() string { return "etcd " + e.prefix }

func (e *Etcd) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.timeout)
}

func (e *Etcd) Get(key string) ([]byte, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.prefix+key, e.reads...)
	if err != nil {
		return nil, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNotFound
	}
	return resp.Kvs[0].Value, nil
}

func (e *Etcd) Put(key string, value []byte) error {
	if key == "" {
		return errors.New("state: empty key")
	}
	return e.write("put", key, clientv3.OpPut(e.prefix+key, string(value)))
}

func (e *Etcd) Delete(key string) error {
	return e.write("delete", key, clientv3.OpDelete(e.prefix+key))
}

func (e *Etcd) write(what, key string, op clientv3.Op) error {
	ctx, cancel := e.ctx()
	defer cancel()
	if e.guard == nil {
		if _, err := e.cli.Do(ctx, op); err != nil {
			return fmt.Errorf("etcd %s %s: %w", what, key, err)
		}
		return nil
	}
	resp, err := e.cli.Txn(ctx).If(e.guard()).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("etcd %s %s: %w", what, key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcd %s %s: %w", what, key, ErrFenced)
	}
	return nil
}

func (e *Etcd) List(prefix string) ([]Record, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	opts := append([]clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}, e.reads...)
	resp, err := e.cli.Get(ctx, e.prefix+prefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make([]Record, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, Record{Key: strings.TrimPrefix(string(kv.Key), e.prefix), Value: kv.Value})
	}
	return out, nil
}

// Close does nothing: the client is the caller's.
func (e *Etcd) Close() error { return nil }
