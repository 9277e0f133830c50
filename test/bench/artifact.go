package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// artifact is a tarball the bench installs, with the sums each tool checks.
type artifact struct {
	Path   string
	SHA256 string
	SHA1   string // Ansible's copy module checks sha1
	Size   int64
}

// appScript is bin/app of every artifact: the exec health check runs it.
const appScript = "#!/bin/sh\necho ok\n"

// makeArtifact writes a deterministic tar.gz: bin/<name>, VERSION and,
// when padding > 0, data/blob.bin of that many pseudo-random bytes (from a
// fixed seed, so the tarball is the same on every run and incompressible,
// as real binaries mostly are).
func makeArtifact(dir, name, version string, padding int64) (artifact, error) {
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.tar.gz", name, version))
	f, err := os.Create(p)
	if err != nil {
		return artifact{}, err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	gz, err := gzip.NewWriterLevel(io.MultiWriter(f, h256, h1), gzip.BestSpeed)
	if err != nil {
		return artifact{}, err
	}
	tw := tar.NewWriter(gz)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(name string, mode int64, size int64, body io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, body, size)
		return err
	}
	dirs := []string{"bin/"}
	if padding > 0 {
		dirs = append(dirs, "data/")
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return artifact{}, err
		}
	}
	if err := add("bin/"+name, 0o755, int64(len(appScript)), strings.NewReader(appScript)); err != nil {
		return artifact{}, err
	}
	if err := add("VERSION", 0o644, int64(len(version)+1), strings.NewReader(version+"\n")); err != nil {
		return artifact{}, err
	}
	if padding > 0 {
		rng := rand.NewChaCha8([32]byte{'d', 'r', 'o', 'v', 'e', 'r'})
		if err := add("data/blob.bin", 0o644, padding, rng); err != nil {
			return artifact{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return artifact{}, err
	}
	if err := gz.Close(); err != nil {
		return artifact{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return artifact{}, err
	}
	return artifact{Path: p, SHA256: hex.EncodeToString(h256.Sum(nil)), SHA1: hex.EncodeToString(h1.Sum(nil)), Size: st.Size()}, f.Close()
}
