package wizard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drover-project/drover/manifests"
)

// Artifact is one tarball found in the artifacts folder.
type Artifact struct {
	File    string `json:"file"` // name inside the folder
	Path    string `json:"path"` // absolute
	Name    string `json:"name"` // component name derived from the file name
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	// Template is the known component the name matches, or "".
	Template string `json:"template,omitempty"`
}

// ArtifactConvention is shown on the page: how a file name becomes a
// component name and version.
const ArtifactConvention = "Artifacts are <name>-<version>.tar.gz (or .tgz) files directly in the artifacts folder: " +
	"the version starts at the first '-' followed by a digit (zookeeper-3.8.0.tar.gz, node_exporter-1.9.1.tar.gz). " +
	"The name is lowercased and '_' becomes '-' to make a component name (node-exporter)."

// artifactNameRE is a file name the convention understands.
var artifactNameRE = regexp.MustCompile(`^(.+?)[-_]([0-9][A-Za-z0-9.+~_-]*)\.(?:tar\.gz|tgz)$`)

// parseArtifactName splits a file name by the convention; ok is false for
// files that do not follow it, or whose name or version the manifest
// would refuse.
func parseArtifactName(file string) (name, version string, ok bool) {
	m := artifactNameRE.FindStringSubmatch(file)
	if m == nil {
		return "", "", false
	}
	name = strings.ReplaceAll(strings.ToLower(m[1]), "_", "-")
	if !manifests.IsName(name) || !manifests.IsVersion(m[2]) {
		return "", "", false
	}
	return name, m[2], true
}

// artifactScanner lists the artifacts folder. A tarball's sha256 is
// computed once, streaming, and kept while its size and mtime stay the
// same, so listing a folder of large tarballs again is cheap.
type artifactScanner struct {
	dir string

	mu    sync.Mutex
	cache map[string]cachedSum // by absolute path
}

type cachedSum struct {
	size    int64
	modTime time.Time
	sum     string
}

// Skipped is a file in the folder that is not usable as an artifact.
type Skipped struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// scan lists the folder's artifacts sorted by name then version, and the
// tarball-looking files it could not use with the reason.
func (s *artifactScanner) scan() ([]Artifact, []Skipped, error) {
	if s.dir == "" {
		return nil, nil, nil
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("artifacts folder: %w", err)
	}
	// The list is served without a token, so it must not tell anyone the
	// sha256 of a file outside the folder through a symlink.
	root, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("artifacts folder: %w", err)
	}
	var arts []Artifact
	var skipped []Skipped
	for _, e := range entries {
		file := e.Name()
		if !strings.HasSuffix(file, ".tar.gz") && !strings.HasSuffix(file, ".tgz") {
			continue
		}
		name, version, ok := parseArtifactName(file)
		if !ok {
			skipped = append(skipped, Skipped{File: file, Reason: "name does not follow <name>-<version>.tar.gz"})
			continue
		}
		path := filepath.Join(s.dir, file)
		if !inside(root, path) {
			skipped = append(skipped, Skipped{File: file, Reason: "a symlink to outside the artifacts folder"})
			continue
		}
		st, err := os.Stat(path) // follows symlinks, unlike DirEntry.Info
		if err != nil || !st.Mode().IsRegular() {
			skipped = append(skipped, Skipped{File: file, Reason: "not a readable regular file"})
			continue
		}
		sum, err := s.sha256(path, st)
		if err != nil {
			skipped = append(skipped, Skipped{File: file, Reason: err.Error()})
			continue
		}
		arts = append(arts, Artifact{
			File: file, Path: path, Name: name, Version: version, SHA256: sum, Size: st.Size(),
			Template: templateFor(name),
		})
	}
	sort.Slice(arts, func(i, j int) bool {
		if arts[i].Name != arts[j].Name {
			return arts[i].Name < arts[j].Name
		}
		return arts[i].Version < arts[j].Version
	})
	return arts, skipped, nil
}

// inside reports whether path, symlinks resolved, is in the folder root
// (already resolved).
func inside(root, path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(root, real)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// find returns the artifact with that file name, as the scan sees it now.
func (s *artifactScanner) find(file string) (Artifact, error) {
	arts, _, err := s.scan()
	if err != nil {
		return Artifact{}, err
	}
	for _, a := range arts {
		if a.File == file {
			return a, nil
		}
	}
	return Artifact{}, fmt.Errorf("no artifact %q in %s", file, s.dir)
}

func (s *artifactScanner) sha256(path string, st os.FileInfo) (string, error) {
	s.mu.Lock()
	c, ok := s.cache[path]
	s.mu.Unlock()
	if ok && c.size == st.Size() && c.modTime.Equal(st.ModTime()) {
		return c.sum, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]cachedSum{}
	}
	s.cache[path] = cachedSum{size: st.Size(), modTime: st.ModTime(), sum: sum}
	s.mu.Unlock()
	return sum, nil
}

// fileSHA256 hashes a file without reading it into memory.
func fileSHA256(path string) (string, error) {
	f, err := manifests.OpenRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
