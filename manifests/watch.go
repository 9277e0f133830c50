package manifests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Watcher reports the manifest's bytes whenever they change. It watches the
// parent directory, not the file, because editors save by rename (vim,
// sed -i), tools delete and recreate, and Kubernetes swaps a ConfigMap's
// `..data` symlink: a watch on the file itself would go deaf after any of
// those. When the path is a symlink into another directory, that directory
// is watched too, so an edit of the link's target is seen at once.
//
// Events whose name could matter (the file, the ConfigMap's `..` entries,
// the link target) trigger a debounced re-read; the bytes are compared with
// the last ones sent, so a touch or an unrelated event sends nothing. A
// periodic re-read covers filesystems without inotify, a lost watch (the
// directory removed and made again) and an inotify queue overflow.
type Watcher struct {
	Path string
	// Debounce collapses a burst of events into one read (default 100ms).
	// A burst that never pauses is read at least every 10 Debounce.
	Debounce time.Duration
	// Resync re-reads the file even without events (default 1m).
	Resync time.Duration
	Log    *zap.Logger

	// pollOnly ignores inotify, as on a filesystem without it, so that
	// only Resync sees a change. Tests use it to prove the safety net.
	pollOnly bool
}

// Change is one observed state of the manifest file: its bytes, or the
// error reading it (deleted, unreadable). A consumer must treat an error
// or empty bytes as "keep the last good manifest".
type Change struct {
	Data []byte
	Err  error
}

// burstFactor bounds how long a continuous burst of events can postpone a
// read, in Debounce periods.
const burstFactor = 10

// Run sends a Change on out for the initial content and then whenever the
// bytes (or the kind of read error) differ from the last sent. It returns
// nil when ctx is done. Without inotify (none available, or the watch
// failed) it keeps going on the periodic re-read alone.
func (w *Watcher) Run(ctx context.Context, out chan<- Change) error {
	log := w.Log
	if log == nil {
		log = zap.NewNop()
	}
	path, err := filepath.Abs(w.Path)
	if err != nil {
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

	ws := &watchSet{path: path, log: log}
	if !w.pollOnly {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			log.Warn("inotify unavailable: relying on the periodic re-read", zap.Duration("resync", resync), zap.Error(err))
		} else {
			defer fw.Close()
			ws.fw = fw
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if ws.fw != nil {
		events, errs = ws.fw.Events, ws.fw.Errors
	}

	var last *Change
	emit := func() {
		// Watch first, then read: a change landing in between is then
		// seen by the next event rather than lost.
		ws.update()
		c := read(path)
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
	defer timer.Stop()
	var burst time.Time // when the burst being debounced began; zero if none
	poke := func() {
		now := time.Now()
		if burst.IsZero() {
			burst = now
		}
		timer.Reset(max(0, min(debounce, burst.Add(burstFactor*debounce).Sub(now))))
	}
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				log.Error("inotify watch closed: relying on the periodic re-read", zap.Duration("resync", resync))
				events, errs = nil, nil
				continue
			}
			if !ws.relevant(ev.Name) {
				continue
			}
			log.Debug("manifest event", zap.String("name", ev.Name), zap.String("op", ev.Op.String()))
			poke()
		case err, ok := <-errs:
			if !ok {
				events, errs = nil, nil
				continue
			}
			// Most likely a queue overflow: events were lost, so look.
			log.Warn("manifest watch error", zap.Error(err))
			poke()
		case <-timer.C:
			burst = time.Time{}
			emit()
		case <-ticker.C:
			emit()
		}
	}
}

// watchSet is the inotify watch of the manifest's directory and, when the
// manifest is a symlink, of its target's directory, and the names in them
// that matter.
type watchSet struct {
	fw   *fsnotify.Watcher // nil: no inotify
	path string
	log  *zap.Logger
	// dirs are the directories that should be watched; the first is the
	// manifest's own. names are the entries that matter in each.
	dirs  []string
	names map[string]bool // full paths
}

// update points the watches at the directories the manifest resolves
// through now: a symlink swap moves the target, and a removed directory
// loses its watch until it exists again.
func (ws *watchSet) update() {
	dir := filepath.Dir(ws.path)
	ws.dirs = []string{dir}
	ws.names = map[string]bool{ws.path: true}
	if link, err := os.Readlink(ws.path); err == nil && !filepath.IsAbs(link) {
		// A relative link's first element (`..data` in a ConfigMap) is
		// what gets swapped.
		first, _, _ := strings.Cut(filepath.ToSlash(filepath.Clean(link)), "/")
		if first != ".." {
			ws.names[filepath.Join(dir, first)] = true
		}
	}
	if real, err := filepath.EvalSymlinks(ws.path); err == nil && real != ws.path {
		ws.names[real] = true
		if rd := filepath.Dir(real); rd != dir {
			ws.dirs = append(ws.dirs, rd)
		}
	}
	if ws.fw == nil {
		return
	}
	have := ws.fw.WatchList()
	for _, d := range ws.dirs {
		if !slices.Contains(have, d) {
			if err := ws.fw.Add(d); err != nil {
				ws.log.Debug("cannot watch directory yet", zap.String("dir", d), zap.Error(err))
			}
		}
	}
	for _, d := range have {
		if !slices.Contains(ws.dirs, d) {
			_ = ws.fw.Remove(d) // gone already if the directory was deleted
		}
	}
}

// relevant reports whether an event on name may change what the manifest
// path reads as.
func (ws *watchSet) relevant(name string) bool {
	if ws.names[name] || slices.Contains(ws.dirs, name) {
		return true
	}
	// Kubernetes' atomic writer names its entries `..data`, `..data_tmp`
	// and `..<timestamp>`.
	return filepath.Dir(name) == ws.dirs[0] && strings.HasPrefix(filepath.Base(name), "..")
}

// read follows symlinks, so a swapped `..data` link is read through.
func read(path string) Change {
	data, err := ReadRegular(path, MaxManifestBytes)
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
