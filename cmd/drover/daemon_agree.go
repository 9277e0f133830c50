package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/drover-project/drover/ha"
)

// Manifest agreement between several daemons (issue 22; the rule is
// ha.Judge, the decision in docs/ARCHITECTURE.md). A standby compares
// its own file with the generation the leader published; a leader
// publishes each generation before the controller may act on it, and
// one that took over with a stale file acts on nothing until its file
// changes.

// generationStore is what the agreement needs of etcd: ha.Generations
// and the term it publishes under (etcdGenerations), or a fake in tests.
type generationStore interface {
	// Standing judges hash against what was acted on.
	Standing(ctx context.Context, hash string) (ha.Standing, *ha.Generation, error)
	// Acted is the generation acted on now (nil: none yet).
	Acted(ctx context.Context) (*ha.Generation, error)
	// Publish makes hash the generation acted on (only while leading).
	Publish(ctx context.Context, hash string) (*ha.Generation, error)
}

// agreementTimeout bounds each etcd request of the agreement.
const agreementTimeout = 5 * time.Second

// agreement is one daemon's side of the manifest agreement.
type agreement struct {
	store generationStore
	// opMu serialises what reads and writes etcd (a manifest load and
	// the retry of the watch loop).
	opMu sync.Mutex

	mu    sync.Mutex
	own   string         // this daemon's manifest hash (the one in force, once leading)
	acted *ha.Generation // as last read or published; nil: none known
	// leading: this daemon leads and publishes; following: it published
	// in this term, so it follows its own file's edits.
	leading, following bool
	stale              bool
	why                string // why this daemon may act on nothing ("" may act)
	readErr            error  // the last failed read of a standby
}

// errNotAgreed is wrapped by MayAct while the manifest in force is not
// the published generation.
var errNotAgreed = errors.New("manifest generation not agreed")

// setOwn notes the hash of this standby's file.
func (a *agreement) setOwn(hash string) {
	a.mu.Lock()
	a.own = hash
	a.mu.Unlock()
}

// lead starts the term's part: from now on nothing is acted on until
// adopt has published a generation.
func (a *agreement) lead(store generationStore) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.store, a.leading, a.following = store, true, false
	a.why = "checking the manifest's generation against the one acted on (etcd)"
}

// adopt puts a manifest with hash in force: put hands it to the
// controller. The fence is closed before put when the generation is not
// yet the published one, and opened only after it was published, so the
// controller never acts on a generation etcd does not name.
func (a *agreement) adopt(ctx context.Context, hash string, put func()) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	a.mu.Lock()
	a.own = hash
	following := a.following
	a.mu.Unlock()
	if following {
		// The leader's own edit: published first, then acted on; a failed
		// publish closes the fence before the controller sees it.
		a.publish(ctx)
		put()
		return
	}
	a.mu.Lock()
	if a.why == "" {
		a.why = "checking the manifest's generation against the one acted on (etcd)"
	}
	a.mu.Unlock()
	put()
	a.settle(ctx)
}

// retry is the watch loop's: a standby reads the acted generation; a
// leader whose generation is not agreed tries again (etcd was away, or
// its file changed meanwhile).
func (a *agreement) retry(ctx context.Context) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	a.mu.Lock()
	leading, following, why, store := a.leading, a.following, a.why, a.store
	a.mu.Unlock()
	switch {
	case store == nil:
	case !leading:
		qctx, cancel := context.WithTimeout(ctx, agreementTimeout)
		acted, err := store.Acted(qctx)
		cancel()
		a.mu.Lock()
		a.readErr = err
		if err == nil {
			a.acted = acted
		}
		a.mu.Unlock()
	case why == "":
	case following:
		a.publish(ctx)
	default:
		a.settle(ctx)
	}
}

// settle judges the manifest in force and publishes it unless stale
// (under opMu).
func (a *agreement) settle(ctx context.Context) {
	a.mu.Lock()
	own, store := a.own, a.store
	a.mu.Unlock()
	qctx, cancel := context.WithTimeout(ctx, agreementTimeout)
	standing, acted, err := store.Standing(qctx, own)
	cancel()
	switch {
	case err != nil:
		a.refuse(fmt.Sprintf("cannot check the manifest's generation in etcd: %v", err), false, nil)
	case standing == ha.Stale:
		a.refuse(fmt.Sprintf("this daemon's manifest (%s) is a generation acted on before and superseded by generation %d (%s, published by %s at etcd revision %d): it acts on nothing until its file catches up",
			short(own), acted.Seq, short(acted.Hash), acted.By, acted.Revision), true, acted)
	default:
		a.publish(ctx)
	}
}

// publish makes the manifest in force the acted generation (under opMu).
func (a *agreement) publish(ctx context.Context) {
	a.mu.Lock()
	own, store := a.own, a.store
	a.mu.Unlock()
	qctx, cancel := context.WithTimeout(ctx, agreementTimeout)
	acted, err := store.Publish(qctx, own)
	cancel()
	if err != nil {
		a.refuse(fmt.Sprintf("cannot publish the manifest's generation (%s) in etcd, so nothing acts on it: %v", short(own), err), false, nil)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acted, a.following, a.stale, a.why = acted, true, false, ""
}

func (a *agreement) refuse(why string, stale bool, acted *ha.Generation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.why, a.stale = why, stale
	if acted != nil {
		a.acted = acted
	}
}

// MayAct is nil while the manifest in force is the published generation.
func (a *agreement) MayAct() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.why != "" {
		return fmt.Errorf("%w: %s", errNotAgreed, a.why)
	}
	return nil
}

// agreementView is what status and metrics show of the agreement.
type agreementView struct {
	Own      string
	Acted    *ha.Generation
	Mismatch bool // this daemon's manifest is not the generation acted on
	Stale    bool // it leads, and its manifest is an older generation
	Why      string
	ReadErr  error
}

func (a *agreement) view() agreementView {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := agreementView{Own: a.own, Stale: a.stale, Why: a.why, ReadErr: a.readErr}
	if a.acted != nil {
		g := *a.acted
		v.Acted = &g
		v.Mismatch = a.own != "" && g.Hash != a.own
	}
	return v
}

// etcdGenerations is the generationStore of a daemon on etcd; term is
// nil for a standby, which never publishes.
type etcdGenerations struct {
	gens *ha.Generations
	term *ha.Term
}

func (e etcdGenerations) Standing(ctx context.Context, hash string) (ha.Standing, *ha.Generation, error) {
	return e.gens.Standing(ctx, hash)
}

// Acted reads what a member has, without quorum if need be: a standby
// shows the last generation it can know of.
func (e etcdGenerations) Acted(ctx context.Context) (*ha.Generation, error) {
	return e.gens.Acted(ctx, true)
}

func (e etcdGenerations) Publish(ctx context.Context, hash string) (*ha.Generation, error) {
	if e.term == nil {
		return nil, errors.New("a standby publishes no generation")
	}
	return e.gens.Publish(ctx, e.term, hash)
}
