package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Artifact is one tarball built by test/artifacts/build.sh.
type Artifact struct {
	Path    string // absolute path of the .tar.gz
	SHA256  string // hex; for "wrong-checksum" deliberately not the file's
	Version string
}

// Artifact keys returned by Artifacts.
const (
	ArtifactNodeExporterOld = "node_exporter-1.8.2"
	ArtifactNodeExporterNew = "node_exporter-1.9.1"
	ArtifactZooKeeper       = "zookeeper"      // version from Debian's package, e.g. 3.8.0
	ArtifactFailing         = "failing-1.0"    // bin/failing exits 1
	ArtifactWrongChecksum   = "wrong-checksum" // node_exporter-1.9.1's tarball with a sha256 that does not match
	// ArtifactEtcdPrefix starts the keys of the etcd tarballs (Debian's etcd
	// and etcdctl under a top folder): etcd-<version> and
	// etcd-<version>+drover.2, one binary under two labels (EtcdArtifacts).
	ArtifactEtcdPrefix = "etcd-"
)

// EtcdArtifacts are the two etcd labels, older first; ok is false when
// the index has not both (etcd-server or etcd-client not installed).
func EtcdArtifacts(arts map[string]Artifact) (old, updated Artifact, ok bool) {
	for k, a := range arts {
		if !strings.HasPrefix(k, ArtifactEtcdPrefix) {
			continue
		}
		if strings.HasSuffix(k, "+drover.2") {
			updated = a
		} else {
			old = a
		}
	}
	return old, updated, old.Path != "" && updated.Path != ""
}

// Artifacts builds (first time: minutes, needs the Go module proxy) or reuses
// the test artifacts by running test/artifacts/build.sh, and returns them by
// key. The script holds a file lock, so parallel test binaries build once and
// the rest wait; a cached run takes well under a second.
func Artifacts(ctx context.Context) (map[string]Artifact, error) {
	script, err := artifactsScript()
	if err != nil {
		return nil, err
	}
	bash, err := lookTool("bash")
	if err != nil {
		return nil, err
	}
	cacheDir := os.Getenv("DROVER_TEST_CACHE")
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	cmd := exec.CommandContext(ctx, bash, script)
	cmd.Env = append(os.Environ(), "DROVER_TEST_CACHE="+cacheDir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("harness: %s: %w\n%s", script, err, tail(out.String(), 4000))
	}
	index := filepath.Join(cacheDir, "artifacts", "index.tsv")
	f, err := os.Open(index)
	if err != nil {
		return nil, fmt.Errorf("harness: artifacts index: %w", err)
	}
	defer f.Close()
	arts, err := parseArtifactIndex(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", index, err)
	}
	return arts, nil
}

// parseArtifactIndex reads key<TAB>version<TAB>sha256<TAB>path lines.
func parseArtifactIndex(sc *bufio.Scanner) (map[string]Artifact, error) {
	arts := map[string]Artifact{}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 || len(f[2]) != 64 || !filepath.IsAbs(f[3]) {
			return nil, fmt.Errorf("bad index line %q", line)
		}
		arts[f[0]] = Artifact{Version: f[1], SHA256: f[2], Path: f[3]}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{ArtifactNodeExporterOld, ArtifactNodeExporterNew, ArtifactZooKeeper, ArtifactFailing, ArtifactWrongChecksum} {
		if _, ok := arts[k]; !ok {
			return nil, fmt.Errorf("index lacks %s", k)
		}
	}
	return arts, nil
}

// artifactsScript locates test/artifacts/build.sh: next to this source file,
// or (in a -trimpath build, where the file name is not a real path) above the
// working directory, which is a package dir inside the module under go test.
func artifactsScript() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "artifacts", "build.sh"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "test", "artifacts", "build.sh"))
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("harness: cannot find test/artifacts/build.sh (run from inside the drover module)")
}

func tail(s string, max int) string {
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}
