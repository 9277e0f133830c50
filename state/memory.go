package state

import (
	"bytes"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store that forgets everything when the process ends: for
// tests, and for a daemon run without a state dir.
type Memory struct {
	mu      sync.Mutex
	records map[string][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{records: map[string][]byte{}} }

func (m *Memory) Get(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.records[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (m *Memory) Put(key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[key] = bytes.Clone(value)
	return nil
}

func (m *Memory) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, key)
	return nil
}

func (m *Memory) List(prefix string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for k, v := range m.records {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Record{Key: k, Value: bytes.Clone(v)})
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (m *Memory) Close() error { return nil }
