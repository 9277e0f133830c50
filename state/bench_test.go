package state

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkBoltPut is one node record written after an action: a
// transaction with its fsyncs, what each change costs the daemon.
func BenchmarkBoltPut(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := bytes.Repeat([]byte("x"), 8<<10) // a node's history of 20 actions, roughly
	b.SetBytes(int64(len(value)))
	for i := 0; b.Loop(); i++ {
		if err := s.Put(fmt.Sprintf("node/n%d", i%500), value); err != nil {
			b.Fatal(err)
		}
	}
}
