package reconciler

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadFilesScript runs the read script with the local sh: regular
// files come back byte for byte, anything else is left out.
func TestReadFilesScript(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("zoo.cfg", "tickTime=2000\nclientPort=2181\n")
	noNewline := write("myid", "1")
	quoted := write("it's here.conf", "a\n--drover-end--\nb")
	empty := write("empty", "")
	big := write("big", strings.Repeat("x", maxReadBytes+1))
	link := filepath.Join(dir, "link")
	if err := os.Symlink(plain, link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	paths := []string{plain, missing, noNewline, quoted, link, empty, big, dir}
	out, err := exec.Command("sh", "-c", readFilesScript(paths)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseReadFiles(paths, out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{plain: "tickTime=2000\nclientPort=2181\n", noNewline: "1", quoted: "a\n--drover-end--\nb", empty: ""}
	if len(got) != len(want) {
		t.Errorf("read %d files, want %d: %q", len(got), len(want), got)
	}
	for p, w := range want {
		if string(got[p]) != w {
			t.Errorf("%s: %q, want %q", filepath.Base(p), got[p], w)
		}
	}
	if _, err := parseReadFiles([]string{plain}, []byte("5\nabc")); err == nil {
		t.Error("a short read parsed")
	}
}
