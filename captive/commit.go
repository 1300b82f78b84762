// This file: group commit of sign-ins (acceptances and code attempts).

package captive

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// signInBatchMax bounds the sign-ins one transaction carries, so that one
// commit's time (and a failure's reach) stays bounded in a rush.
const signInBatchMax = 256

// signInTimeout bounds one batch's transaction. It is not the request's
// context: the batch carries other visitors' sign-ins too.
const signInTimeout = 10 * time.Second

// signIns groups concurrent sign-ins' writes (each a redemption with its
// acceptance, and its code attempt) into one store transaction, so that at
// a morning rush a hundred visitors share one fsync instead of queueing
// for one each; each still gets its answer only once its own acceptance is
// on disk. While a batch commits the next one fills up.
//
// There is no goroutine of its own: the first sign-in to arrive while
// none is committing leads, commits what is queued (its own first) and
// hands the lead to the oldest sign-in still queued, which does the same.
// A sign-in waits for at most the batch in progress and its own.
type signIns struct {
	st Store

	mu      sync.Mutex
	queue   []*pendingSignIn
	leading bool // a sign-in is committing or about to: the queue is its
}

type pendingSignIn struct {
	b      store.BatchRedemption
	res    store.RedeemResult
	batch  int           // how many sign-ins the transaction that carried it held
	commit time.Duration // how long that transaction took
	// done is sent false when res is ready, or true when this sign-in is
	// to lead the next batch (its res is not ready yet).
	done chan bool
}

// signInTiming is how a sign-in's writes went, for the log: how many
// sign-ins shared its transaction, and how long it waited from asking
// until its writes were durable (the queue and the commit).
type signInTiming struct {
	batch  int
	wait   time.Duration // queue and commit
	commit time.Duration // the commit alone
}

// do commits b with whatever other sign-ins are waiting and returns its
// result (RedeemVoucher's, or for an attempt alone only Err).
func (g *signIns) do(b store.BatchRedemption) (store.RedeemResult, signInTiming) {
	t0 := time.Now()
	s := &pendingSignIn{b: b, done: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, s)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead || <-s.done {
		// Leading: s is the oldest queued sign-in, so the batch carries it.
		g.commit()
	}
	return s.res, signInTiming{batch: s.batch, wait: time.Since(t0), commit: s.commit}
}

// commit takes up to signInBatchMax queued sign-ins, commits them and
// answers each; then it passes the lead to the oldest sign-in still
// queued, or gives it up.
func (g *signIns) commit() {
	g.mu.Lock()
	n := min(len(g.queue), signInBatchMax)
	batch := g.queue[:n:n]
	g.queue = append([]*pendingSignIn(nil), g.queue[n:]...)
	g.mu.Unlock()

	items := make([]store.BatchRedemption, len(batch))
	for i, s := range batch {
		items[i] = s.b
	}
	ctx, cancel := context.WithTimeout(context.Background(), signInTimeout)
	t0 := time.Now()
	res, err := g.st.RedeemVouchers(ctx, items)
	took := time.Since(t0)
	cancel()
	for i, s := range batch {
		if err != nil {
			s.res = store.RedeemResult{Err: fmt.Errorf("captive: sign-in: %w", err)}
		} else {
			s.res = res[i]
		}
		s.batch, s.commit = len(batch), took
		if i > 0 { // batch[0] is the leader, which is not waiting
			s.done <- false
		}
	}

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.done <- true
}
