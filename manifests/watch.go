package manifests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Watcher reports the manifest's bytes whenever they change. It watches the
// parent directory, not the file, because editors save by rename (vim,
// sed -i), tools delete and recreate, and Kubernetes swaps a ConfigMap's
// `..data` symlink: a watch on the file itself would go deaf after any of
// those. Every event in the directory just triggers a debounced re-read,
// and a periodic re-read covers filesystems without inotify.
type Watcher struct {
	Path string
	// Debounce collapses a burst of events into one read.
	Debounce time.Duration
	// Resync re-reads the file even without events.
	Resync time.Duration
	Log    *zap.Logger
}

// Change is one observed state of the manifest file: its bytes, or the
// error reading it (deleted, unreadable). A consumer must treat an error
// or empty bytes as "keep the last good manifest".
type Change struct {
	Data []byte
	Err  error
}

// Run sends a Change on out for the initial content and then whenever the
// bytes (or the read error) differ from the last sent. It returns when ctx
// is done.
func (w *Watcher) Run(ctx context.Context, out chan<- Change) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	dir := filepath.Dir(w.Path)
	if err := fw.Add(dir); err != nil {
		return err
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = 100 * time.Millisecond
	}
	resync := w.Resync
	if resync <= 0 {
		resync = time.Minute
	}
	var last *Change
	emit := func() {
		c := read(w.Path)
		if last != nil && bytes.Equal(last.Data, c.Data) && errString(last.Err) == errString(c.Err) {
			return
		}
		last = &c
		select {
		case out <- c:
		case <-ctx.Done():
		}
	}
	emit()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watch: fsnotify closed")
			}
			if w.Log != nil {
				w.Log.Debug("manifest dir event", zap.String("name", ev.Name), zap.String("op", ev.Op.String()))
			}
			timer.Reset(debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watch: fsnotify closed")
			}
			if w.Log != nil {
				w.Log.Warn("manifest watch error", zap.Error(err))
			}
			timer.Reset(debounce)
		case <-timer.C:
			emit()
		case <-ticker.C:
			emit()
		}
	}
}

// read follows symlinks, so a swapped `..data` link is read through.
func read(path string) Change {
	data, err := readLimited(path)
	if err != nil {
		return Change{Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Change{Data: data, Err: errors.New(path + ": manifest is empty")}
	}
	return Change{Data: data}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, os.ErrNotExist) {
		return "not-exist"
	}
	return err.Error()
}
