package wizard

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/drover-project/drover/manifests"
)

// Write refusals, each a distinct HTTP status on the page.
var (
	// ErrInvalid is a manifest the daemon would reject.
	ErrInvalid = errors.New("manifest is not valid")
	// ErrStale is a manifest file that changed since the review: writing
	// would lose that edit.
	ErrStale = errors.New("the manifest file changed since the review")
	// ErrSymlink is a manifest path that is a symlink: replacing it would
	// cut the link to what another tool (a ConfigMap) manages.
	ErrSymlink = errors.New("the manifest path is a symlink")
)

// Written says where the manifest went.
type Written struct {
	Path   string `json:"path"`
	Backup string `json:"backup,omitempty"` // the previous file, if there was one
	Hash   string `json:"hash"`
}

// currentHash is the sha256 of the manifest file as it is now; exists is
// false when there is none.
func (w *Wizard) currentHash() (hash string, exists bool) {
	f, err := manifests.OpenRegular(w.opts.ManifestPath)
	if errors.Is(err, manifests.ErrNotRegular) {
		return "unreadable: " + err.Error(), true
	}
	if err != nil {
		return "", false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, manifests.MaxManifestBytes+1)); err != nil {
		return "unreadable: " + err.Error(), true
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// write replaces the watched manifest with data, which must pass the
// daemon's checks, and only if the file still is what the review saw
// (baseHash; "" for no file). The previous file is kept next to it as
// <name>.bak-<UTC time>, and the new one goes in by rename(2) from a
// synced temp file in the same directory, so the watcher reads either the
// old bytes or the new, never a partial file.
//
// A write in this process is serialised; an editor saving in the instant
// between the hash check and the rename is the one edit that can still be
// lost, and its content survives in the backup only if it landed before
// the backup link.
//
// On ErrInvalid the problems say why.
func (w *Wizard) write(data []byte, baseHash string) (Written, manifests.Problems, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	out, err := w.writeLocked(data, baseHash)
	var pe problemsError
	if errors.As(err, &pe) {
		return Written{}, manifests.Problems(pe), ErrInvalid
	}
	return out, nil, err
}

func (w *Wizard) writeLocked(data []byte, baseHash string) (Written, error) {
	path := w.opts.ManifestPath
	if _, ps, err := w.check(data); err != nil {
		return Written{}, problemsError(ps)
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return Written{}, fmt.Errorf("%w: %s is managed elsewhere (a ConfigMap?): edit its source instead", ErrSymlink, path)
	}
	now, exists := w.currentHash()
	if now != baseHash || (baseHash == "" && exists) {
		return Written{}, fmt.Errorf("%w: review again to see it", ErrStale)
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".wizard-*")
	if err != nil {
		return Written{}, fmt.Errorf("write manifest: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return Written{}, fmt.Errorf("write manifest: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Written{}, fmt.Errorf("write manifest: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Written{}, fmt.Errorf("sync manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Written{}, fmt.Errorf("write manifest: %w", err)
	}

	out := Written{Path: path}
	if exists {
		backup, err := w.backup(path)
		if err != nil {
			return Written{}, err
		}
		out.Backup = backup
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Written{}, fmt.Errorf("replace manifest: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Written{}, err
	}
	sum := sha256.Sum256(data)
	out.Hash = hex.EncodeToString(sum[:])
	return out, nil
}

// backup hard-links the current manifest under a new .bak name (a copy
// when links are not possible): the rename that follows then leaves the
// old bytes in the backup untouched.
func (w *Wizard) backup(path string) (string, error) {
	base := path + ".bak-" + w.opts.Now().UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		err := os.Link(path, name)
		if err == nil {
			return name, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err := copyFile(path, name); err != nil {
			return "", fmt.Errorf("back up %s: %w", path, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("back up %s: too many backups named %s*", path, base)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// problemsError carries validation problems out of writeLocked.
type problemsError manifests.Problems

func (p problemsError) Error() string {
	return (&manifests.InvalidError{Problems: manifests.Problems(p)}).Error()
}
