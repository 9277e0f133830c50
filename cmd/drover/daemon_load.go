package main

import (
	"context"
	"errors"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// loadManifests takes every change of the manifest (the watcher's, and a
// re-read on SIGHUP) and loads it, until ctx ends. It runs beside the
// loop that waits for a stop signal, not in it: a load renders every
// template for every node and may take seconds (up to the templates'
// budget, manifests.MaxTemplateTime), and a SIGTERM must not wait for
// it. A stop also cancels the load in progress.
func (d *daemon) loadManifests(ctx context.Context, path string, changes <-chan manifests.Change, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			d.reload(ctx, path, c)
		case <-hup:
			d.log.Info("SIGHUP: re-reading the manifest")
			data, err := manifests.ReadRegular(path, manifests.MaxManifestBytes)
			d.reload(ctx, path, manifests.Change{Data: data, Err: err})
		}
	}
}

// logStopped says that a load was cut off by the daemon stopping.
func (d *daemon) logStopped(err error) {
	d.log.Info("manifest load stopped: the daemon is stopping", zap.Error(err))
}

// publicLoadError is a rejected manifest's error as the status shows it,
// to anyone who reaches the daemon: in full, except what came from an
// inventoryFile, which says only where and what kind (the log has it all).
func publicLoadError(err error) error {
	var inv *manifests.InventoryError
	if errors.As(err, &inv) {
		return errors.New(inv.Public())
	}
	return err
}

// loadFirst is the daemon's first load, as compile but of a regular file
// only (as the watcher reads it: a FIFO there would block the start) and
// stopped by ctx (a SIGTERM during a long load).
func loadFirst(ctx context.Context, path string) (*manifests.Loaded, *plan.Desired, timings, error) {
	data, err := manifests.ReadRegular(path, manifests.MaxManifestBytes)
	if err != nil {
		return nil, nil, timings{}, err
	}
	start := time.Now()
	l, err := manifests.LoadBytesContext(ctx, path, data)
	loaded := time.Now()
	l, desired, err := compileLoaded(path, l, err)
	return l, desired, timings{load: loaded.Sub(start), compile: time.Since(loaded)}, err
}
