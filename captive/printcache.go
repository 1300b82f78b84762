package captive

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// printKeep is how long an issued batch's print page can be opened again
// (a refresh, a jammed printer). The codes are never stored in clear: this
// memory is the only place they are, and only for this long.
const printKeep = 15 * time.Minute

// maxPrints bounds the batches kept: the oldest goes first.
const maxPrints = 64

// printCache holds the print pages of recently issued batches, so that the
// print page is a GET of the batch (POST, redirect, GET): a refresh shows
// the same codes again instead of issuing more.
type printCache struct {
	mu      sync.Mutex
	entries map[string]printEntry
	order   []string // oldest first
}

type printEntry struct {
	actor   string // only the person who issued the batch may open it
	data    printData
	expires time.Time
}

func newPrintCache() *printCache { return &printCache{entries: map[string]printEntry{}} }

// put keeps d for actor and returns the batch's unguessable name.
func (pc *printCache) put(actor string, d printData, now time.Time) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.sweep(now)
	for len(pc.order) >= maxPrints {
		delete(pc.entries, pc.order[0])
		pc.order = pc.order[1:]
	}
	pc.entries[id] = printEntry{actor: actor, data: d, expires: now.Add(printKeep)}
	pc.order = append(pc.order, id)
	return id, nil
}

// get returns the batch id that actor issued, while it is kept.
func (pc *printCache) get(actor, id string, now time.Time) (printData, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.sweep(now)
	e, ok := pc.entries[id]
	if !ok || e.actor != actor {
		return printData{}, false
	}
	return e.data, true
}

// latest returns the newest batch actor issued that is still kept.
func (pc *printCache) latest(actor string, now time.Time) (string, printData, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.sweep(now)
	for i := len(pc.order) - 1; i >= 0; i-- {
		if e := pc.entries[pc.order[i]]; e.actor == actor {
			return pc.order[i], e.data, true
		}
	}
	return "", printData{}, false
}

func (pc *printCache) sweep(now time.Time) {
	for len(pc.order) > 0 {
		e := pc.entries[pc.order[0]]
		if now.Before(e.expires) {
			return
		}
		delete(pc.entries, pc.order[0])
		pc.order = pc.order[1:]
	}
}
