package main

import (
	"context"
	"sync"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifySystemd tells systemd (Type=notify) the daemon is ready, and
// feeds its watchdog (WatchdogSec) while the controller answers. Call it
// once the manifest is in force (or known to be missing) and the HTTP
// server serves. Outside systemd (no $NOTIFY_SOCKET) it does nothing.
// When ctx ends it says STOPPING=1 but keeps feeding the watchdog while
// in-flight actions finish; the returned func stops the feeding.
func (d *daemon) notifySystemd(ctx context.Context) (stop func()) {
	status := "converging the cluster"
	if !d.manifestLoaded() {
		status = "waiting for the manifest to be written"
	}
	if ok, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady+"\nSTATUS="+status); err != nil {
		d.log.Warn("systemd notify failed", zap.Error(err))
	} else if !ok {
		return func() {}
	}
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog settings unusable", zap.Error(err))
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.feedWatchdog(ctx, wctx, interval)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// feedWatchdog sends WATCHDOG=1 at a third of the interval while the
// controller is alive (reconciler.Controller.Alive), until wctx ends;
// and STOPPING=1 once ctx ends. With no watchdog (interval 0) it only
// waits to say STOPPING=1.
func (d *daemon) feedWatchdog(ctx, wctx context.Context, interval time.Duration) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		tick = t.C
	}
	stopping := ctx.Done()
	for {
		select {
		case <-wctx.Done():
			return
		case <-stopping:
			stopping = nil
			_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
		case <-tick:
			actx, cancel := context.WithTimeout(wctx, interval/3)
			err := d.ctrl.Alive(actx)
			cancel()
			if err != nil {
				d.log.Error("the controller does not answer: systemd's watchdog is not fed and will restart the daemon",
					zap.Duration("watchdog", interval))
				continue
			}
			_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
		}
	}
}

// manifestLoaded says whether a manifest is in force.
func (d *daemon) manifestLoaded() bool {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	return d.loaded
}
