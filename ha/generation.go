package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Manifest agreement. Each daemon reads its own manifest file, so two
// daemons may hold different ones (the operator's git or config
// management has reached one host and not the other). The leader
// publishes in etcd the generation it acts on, before it acts on it:
//
//	<prefix>generation              the generation acted on now (Generation)
//	<prefix>generations/<hash>      one record per hash ever acted on (its
//	                                create revision: when it first was)
//
// A hash has no order of its own, so "older" is decided by what etcd saw
// (Judge): a hash acted on before and superseded since is Stale; the
// hash acted on now is Current; a hash never acted on is New, the next
// edit, and may act. A daemon that takes over with a Stale file acts on
// nothing until its file changes, so a lagging host never rolls the
// cluster back. A leader that has published in its term follows its
// own file's edits (that is how the operator changes the cluster, a
// revert to older bytes included), publishing each before acting.

// Generation is a manifest generation acted on in the cluster.
type Generation struct {
	// Hash is the manifest's content hash (manifest and inventory bytes).
	Hash string `json:"hash"`
	// Seq counts the generations acted on in this cluster: 1 for the
	// first, one more for every change of Hash.
	Seq int64 `json:"seq"`
	// By names the daemon that published it, at Time.
	By   string    `json:"by"`
	Time time.Time `json:"time"`
	// Revision is the etcd revision at which it became the generation
	// acted on (set on read, not stored in the value).
	Revision int64 `json:"-"`
}

// Standing is how a manifest hash relates to what was acted on.
type Standing int

const (
	// Current: the generation acted on now (or none was ever acted on).
	Current Standing = iota
	// New: never acted on; the next edit.
	New
	// Stale: acted on before and superseded since.
	Stale
)

func (s Standing) String() string {
	switch s {
	case Current:
		return "current"
	case New:
		return "new"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("Standing(%d)", int(s))
}

// Judge is the standing of the manifest hash own, given the generation
// acted on now (nil: none yet) and whether own was ever acted on.
func Judge(own string, acted *Generation, actedBefore bool) Standing {
	switch {
	case acted == nil || acted.Hash == own:
		return Current
	case actedBefore:
		return Stale
	default:
		return New
	}
}

// ErrPublishRace is returned by Publish when another write changed the
// acted generation between its read and its write (a deposed leader's
// late write cannot: the term's guard refuses it).
var ErrPublishRace = errors.New("the acted generation changed while publishing")

// Generations reads and publishes a cluster's acted generations.
type Generations struct {
	cli    *clientv3.Client
	prefix string
}

// NewGenerations keeps the generations under prefix ("/drover/<cluster>/").
func NewGenerations(cli *clientv3.Client, prefix string) *Generations {
	return &Generations{cli: cli, prefix: prefix}
}

func (g *Generations) currentKey() string           { return g.prefix + "generation" }
func (g *Generations) recordKey(hash string) string { return g.prefix + "generations/" + hash }

// Standing reads, in one consistent read, the generation acted on now
// and whether own was ever acted on, and judges own.
func (g *Generations) Standing(ctx context.Context, own string) (Standing, *Generation, error) {
	resp, err := g.cli.Txn(ctx).Then(clientv3.OpGet(g.currentKey()), clientv3.OpGet(g.recordKey(own))).Commit()
	if err != nil {
		return 0, nil, fmt.Errorf("read the acted generation: %w", err)
	}
	acted, err := g.decode(resp.Responses[0].GetResponseRange().Kvs)
	if err != nil {
		return 0, nil, err
	}
	before := len(resp.Responses[1].GetResponseRange().Kvs) > 0
	return Judge(own, acted, before), acted, nil
}

// Acted is the generation acted on now, nil when none was yet. With
// serializable, a member without quorum answers from what it has.
func (g *Generations) Acted(ctx context.Context, serializable bool) (*Generation, error) {
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	resp, err := g.cli.Get(ctx, g.currentKey(), opts...)
	if err != nil {
		return nil, fmt.Errorf("read the acted generation: %w", err)
	}
	return g.decode(resp.Kvs)
}

// decode is the acted generation in kvs, nil when absent.
func (g *Generations) decode(kvs []*mvccpb.KeyValue) (*Generation, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	var gen Generation
	if err := json.Unmarshal(kvs[0].Value, &gen); err != nil {
		return nil, fmt.Errorf("acted generation %s: %w", kvs[0].Key, err)
	}
	gen.Revision = kvs[0].ModRevision
	return &gen, nil
}

// Publish makes hash the generation acted on, as the leader of term,
// before it acts on it: one transaction, conditional on the term's
// leader key and on the acted generation being what was read, so two
// writers cannot both win and a deposed leader's write lands nowhere.
// Publishing the hash acted on now changes nothing.
func (g *Generations) Publish(ctx context.Context, term *Term, hash string) (*Generation, error) {
	return g.publish(ctx, term.Guard(), term.Member().Name(), hash)
}

func (g *Generations) publish(ctx context.Context, guard clientv3.Cmp, by, hash string) (*Generation, error) {
	resp, err := g.cli.Txn(ctx).Then(clientv3.OpGet(g.currentKey()), clientv3.OpGet(g.recordKey(hash))).Commit()
	if err != nil {
		return nil, fmt.Errorf("read the acted generation: %w", err)
	}
	acted, err := g.decode(resp.Responses[0].GetResponseRange().Kvs)
	if err != nil {
		return nil, err
	}
	if acted != nil && acted.Hash == hash {
		return acted, nil
	}
	var rev int64
	if acted != nil {
		rev = acted.Revision
	}
	known := len(resp.Responses[1].GetResponseRange().Kvs) > 0
	next := Generation{Hash: hash, Seq: 1, By: by, Time: time.Now().UTC()}
	if acted != nil {
		next.Seq = acted.Seq + 1
	}
	v, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	// The current key unchanged since the read: ModRevision 0 is "absent".
	unchanged := clientv3.Compare(clientv3.ModRevision(g.currentKey()), "=", rev)
	ops := []clientv3.Op{clientv3.OpPut(g.currentKey(), string(v))}
	if !known {
		ops = append(ops, clientv3.OpPut(g.recordKey(hash), string(v)))
	}
	tr, err := g.cli.Txn(ctx).If(guard, unchanged).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("publish generation %s: %w", hash, err)
	}
	if !tr.Succeeded {
		return nil, fmt.Errorf("publish generation %s: %w (or this daemon no longer leads)", hash, ErrPublishRace)
	}
	next.Revision = tr.Header.Revision
	return &next, nil
}
