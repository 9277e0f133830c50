package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// bucket holds every record; the version lets a later layout live beside it.
var bucket = []byte("drover/v1")

// Bolt is a Store in one bbolt file. bbolt writes a transaction's pages
// elsewhere in the file and then flips the meta page, with fsync between,
// so a process killed or a machine cut off mid-write reopens at the last
// committed transaction: each Put is one transaction.
type Bolt struct {
	db *bolt.DB
}

var _ Store = (*Bolt)(nil)

// ErrLocked means another process has the store open.
var ErrLocked = errors.New("state store in use by another process")

// OpenBolt opens (creating it and its folder if need be) the store at
// path. A store another process holds open fails after wait with
// ErrLocked, so a second daemon cannot share the first one's state.
func OpenBolt(path string, wait time.Duration) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Path is the store's file.
func (b *Bolt) Path() string { return b.db.Path() }

func (b *Bolt) Get(key string) ([]byte, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		out = bytes.Clone(v) // v lives only as long as the transaction
		return nil
	})
	return out, err
}

func (b *Bolt) Put(key string, value []byte) error {
	if key == "" {
		return errors.New("state: empty key")
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
}

func (b *Bolt) Delete(key string) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

func (b *Bolt) List(prefix string) ([]Record, error) {
	var out []Record
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, Record{Key: string(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

func (b *Bolt) Close() error { return b.db.Close() }
