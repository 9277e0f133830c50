package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// MaxManifestBytes bounds what drover reads, so a runaway file is an
// error and never an out-of-memory.
const MaxManifestBytes = 4 << 20

// Loaded is a parsed, defaulted and validated manifest with what was
// learnt while loading it.
type Loaded struct {
	Cluster *Cluster
	// Path and Dir locate the manifest; artifact paths are relative to Dir.
	Path string
	Dir  string
	// Hash is the sha256 of the manifest bytes and the inventory file's;
	// it identifies the generation.
	Hash string
	// Warnings did not block the load.
	Warnings Problems
}

// Parse decodes one manifest strictly: an unknown or misspelt field is an error.
func Parse(data []byte) (*Cluster, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d allowed", len(data), MaxManifestBytes)
	}
	var c Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return &c, nil
}

// Load reads, parses, defaults and validates the manifest at path. It
// returns an error carrying every problem when the manifest is not usable.
func Load(path string) (*Loaded, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return LoadBytes(path, data)
}

// LoadBytes is Load for bytes already read from path.
func LoadBytes(path string, data []byte) (*Loaded, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: manifest is empty", path)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	h := sha256.New()
	h.Write(data)
	if c.Spec.InventoryFile != "" {
		invPath := resolve(dir, c.Spec.InventoryFile)
		inv, err := readLimited(invPath)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.inventoryFile: %w", path, err)
		}
		var in Inventory
		if err := yaml.UnmarshalStrict(inv, &in); err != nil {
			return nil, fmt.Errorf("%s: parse: %w", invPath, err)
		}
		if len(c.Spec.Nodes) > 0 {
			return nil, fmt.Errorf("%s: spec.nodes and spec.inventoryFile are both set; use one", path)
		}
		c.Spec.Nodes = in.Nodes
		h.Write([]byte{0})
		h.Write(inv)
	}
	c.SetDefaults()
	problems := c.Validate()
	if problems.HasErrors() {
		return nil, &InvalidError{Path: path, Problems: problems}
	}
	return &Loaded{
		Cluster:  c,
		Path:     path,
		Dir:      dir,
		Hash:     hex.EncodeToString(h.Sum(nil)),
		Warnings: problems.Warnings(),
	}, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxManifestBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, st.Size(), MaxManifestBytes)
	}
	buf := make([]byte, st.Size()+1)
	n, err := f.Read(buf)
	if n > int(st.Size()) {
		return nil, fmt.Errorf("%s: file grew while reading", path)
	}
	if err != nil && n == 0 && st.Size() > 0 {
		return nil, err
	}
	return buf[:n], nil
}

// resolve makes p absolute against dir, expanding a leading ~/.
func resolve(dir, p string) string {
	p = ExpandHome(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// ExpandHome expands a leading "~/" to the user's home directory.
func ExpandHome(p string) string {
	if len(p) >= 2 && p[:2] == "~/" {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}
