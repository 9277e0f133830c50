// Package state holds what the drover daemon decided and must not forget
// across a restart: a halted rollout and why, per-node action history and
// backoff, the count of accepted manifests, whether it is suspended.
// Receipts on the nodes stay the truth for what is installed; a store
// only holds decisions.
//
// A Store is a flat map of keyed records with opaque values, the model
// both an embedded file (Bolt, here) and etcd (issue 22) offer: callers
// encode their own values and never see the backend's types.
package state

import "errors"

// Store is a durable map of records. Keys are slash-separated paths
// ("rollout/halt", "node/db-1"). Every Put and Delete is atomic and
// durable once it returns: a crash loses at most the call in progress,
// never a record written before it, never the store. Implementations
// are safe for concurrent use.
type Store interface {
	// Get returns the record's value, or ErrNotFound.
	Get(key string) ([]byte, error)
	Put(key string, value []byte) error
	// Delete removes a record; deleting a missing key is no error.
	Delete(key string) error
	// List returns every record whose key starts with prefix, in key order.
	List(prefix string) ([]Record, error)
	Close() error
}

// Record is one key and its value.
type Record struct {
	Key   string
	Value []byte
}

// ErrNotFound is returned by Get for a key that has no record.
var ErrNotFound = errors.New("no such record")
