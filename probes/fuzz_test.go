package probes

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the probe's parser, which reads
// what a node sends: it must not panic, and it either fails with a
// message or returns a Known observation whose components all have names.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./probes
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.txt")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("drover-probe 2\n"))
	f.Add([]byte("drover-probe 2\ncomponent \x1b]0;x\a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !obs.Known {
			t.Fatal("parsed, but not Known")
		}
		for name, c := range obs.Components {
			if name == "" || c == nil {
				t.Fatalf("component %q: %+v", name, c)
			}
		}
	})
}
